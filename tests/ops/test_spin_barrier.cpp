// tests/ops/test_spin_barrier.cpp — ops/cpu/spin_barrier.h: with 2, 3 and 4 threads over many rounds, every thread sees
// every other thread's write of the round before the barrier (and none of the next round's, which comes after the
// next barrier); a team of one returns at once; the barrier is reusable back to back; more threads than cores (the
// waiters yield) still finish.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "ops/cpu/spin_barrier.h"

using namespace autoround;

TEST(SpinBarrier, EveryThreadSeesTheRoundsWritesOfAllOthers) {
    for (int n : {2, 3, 4, 8}) {
        const int rounds = n <= 2 ? 5000 : 300;
        SpinBarrier bar(n);
        std::vector<int> slot(static_cast<size_t>(n), -1);  // plain ints: the barrier must order them
        std::atomic<int> bad{0};
        std::vector<std::thread> ts;
        for (int t = 0; t < n; ++t)
            ts.emplace_back([&, t] {
                for (int r = 0; r < rounds; ++r) {
                    slot[t] = r;
                    bar.wait();
                    for (int o = 0; o < n; ++o)
                        if (slot[o] != r) bad.fetch_add(1);
                    bar.wait();  // nobody writes round r + 1 before everyone has read round r
                }
            });
        for (auto& th : ts) th.join();
        EXPECT_EQ(bad.load(), 0) << n << " threads";
    }
}

TEST(SpinBarrier, TeamOfOneReturnsAtOnceAndResetChangesTheTeam) {
    SpinBarrier one(1);
    for (int i = 0; i < 1000; ++i) one.wait();
    one.reset(2);
    EXPECT_EQ(one.threads(), 2);
    int x = 0;
    std::thread th([&] {
        x = 1;
        one.wait();
    });
    one.wait();
    EXPECT_EQ(x, 1);
    th.join();
}
