// tests/ops/test_prefetch_stream.cpp — ops/cpu/prefetch_stream.h: the cursor walks the ranges in the order added, across
// their ends (a read of n bytes moves it n bytes, into the next range), skips empty ranges, stops at the end of the
// list (prefetching nothing past it), and rewinds on clear(). Prefetches have no visible effect, so the test follows
// the cursor's position; the ranges are real buffers so that every prefetched address is valid.
#include <gtest/gtest.h>

#include <vector>

#include "ops/cpu/prefetch_stream.h"

using namespace autoround;

TEST(PrefetchStream, CursorRunsAheadAcrossRangesAndStopsAtTheEnd) {
    std::vector<char> a(1000), b(3), c(70001);
    PrefetchStream pf;
    pf.add(a.data() + 1, 999);  // unaligned start
    pf.add(b.data(), 0);         // skipped
    pf.add(b.data(), 3);
    pf.add(c.data() + 5, 70000);
    EXPECT_EQ(pf.total(), 999 + 3 + 70000);
    EXPECT_EQ(pf.position(), 0);
    pf.start(4096);
    EXPECT_EQ(pf.position(), 4096);
    pf.advance(1);
    EXPECT_EQ(pf.position(), 4097);
    for (int i = 0; i < 1000; ++i) pf.advance(577);  // past the end: clamps
    EXPECT_EQ(pf.position(), pf.total());
    pf.advance(64);
    EXPECT_EQ(pf.position(), pf.total());
    pf.clear();
    EXPECT_EQ(pf.total(), 0);
    EXPECT_EQ(pf.position(), 0);
    pf.advance(100);  // nothing to prefetch
    EXPECT_EQ(pf.position(), 0);
}

TEST(PrefetchStream, SmallStepsLandExactlyOnRangeBoundaries) {
    std::vector<char> a(128), b(64);
    PrefetchStream pf;
    pf.add(a.data(), 128);
    pf.add(b.data(), 64);
    for (int i = 1; i <= 192; ++i) {
        pf.advance(1);
        ASSERT_EQ(pf.position(), i);
    }
}
