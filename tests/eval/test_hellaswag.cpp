// tests/eval/test_hellaswag.cpp — reading HellaSwag files: the llama.cpp 6-line task format (tiny
// inline files; CRLF; missing final newline; errors naming the line for a bad gold index, a task cut
// short, an empty context and invalid UTF-8) and transparent bzip2 (detected by the magic, not the
// extension; a .bz2 made here with BZ2_bzBuffToBuffCompress, concatenated streams, corrupt, truncated
// and trailing-garbage files give errors naming the file), plus the real hellaswag_val_full.txt.bz2.
#include <gtest/gtest.h>

#include <bzlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/error.h"
#include "eval/hellaswag.h"
#include "io/compressed_file.h"

using namespace autoround;
namespace fs = std::filesystem;

namespace {

const std::string kTwoTasks =
    "Roof shingle removal: A man is sitting on a roof. he\n"
    "3\n"
    "is using wrap to wrap a pair of skis.\n"
    "is ripping level tiles off.\n"
    "is holding a rubik's cube.\n"
    "starts pulling up roofing on a roof.\n"
    "Caf\xC3\xA9: A lady walks in. She\n"
    "0\n"
    "orders a cr\xC3\xA8me br\xC3\xBBl\xC3\xA9" "e.\n"
    "leaves.\n"
    "\n"
    "sits down.\n";

std::string bz2(const std::string& plain, int block = 9) {
    unsigned int n = static_cast<unsigned>(plain.size() + plain.size() / 100 + 600);
    std::string out(n, '\0');
    const int rc = BZ2_bzBuffToBuffCompress(out.data(), &n, const_cast<char*>(plain.data()),
                                            static_cast<unsigned>(plain.size()), block, 0, 0);
    EXPECT_EQ(rc, BZ_OK);
    out.resize(n);
    return out;
}

// A file in the temp folder, removed at the end of the test.
struct TempFile {
    fs::path path;
    TempFile(const std::string& name, const std::string& bytes)
        : path(fs::temp_directory_path() / ("ar_hs_" + std::to_string(::getpid()) + "_" + name)) {
        std::ofstream(path, std::ios::binary) << bytes;
    }
    ~TempFile() { fs::remove(path); }
};

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "(no error)";
}

}  // namespace

TEST(Hellaswag, ParsesTasks) {
    const auto tasks = parse_hellaswag(kTwoTasks, "two.txt");
    ASSERT_EQ(tasks.size(), 2u);
    EXPECT_EQ(tasks[0].context, "Roof shingle removal: A man is sitting on a roof. he");
    EXPECT_EQ(tasks[0].gold, 3);
    EXPECT_EQ(tasks[0].endings[3], "starts pulling up roofing on a roof.");
    EXPECT_EQ(tasks[0].line, 1);
    EXPECT_EQ(tasks[1].line, 7);
    EXPECT_EQ(tasks[1].gold, 0);
    EXPECT_EQ(tasks[1].endings[0], "orders a cr\xC3\xA8me br\xC3\xBBl\xC3\xA9" "e.");
    EXPECT_EQ(tasks[1].endings[2], "");  // an empty ending is a line like any other
}

TEST(Hellaswag, CrlfAndMissingFinalNewlineAndTrailingBlankLines) {
    std::string crlf;
    for (char c : kTwoTasks) crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
    const auto a = parse_hellaswag(crlf, "crlf.txt");
    const auto b = parse_hellaswag(kTwoTasks.substr(0, kTwoTasks.size() - 1), "nonl.txt");
    const auto c = parse_hellaswag(kTwoTasks + "\n\n", "blank.txt");
    const auto ref = parse_hellaswag(kTwoTasks, "two.txt");
    for (const auto* v : {&a, &b, &c}) {
        ASSERT_EQ(v->size(), 2u);
        for (size_t t = 0; t < 2; ++t) {
            EXPECT_EQ((*v)[t].context, ref[t].context);
            EXPECT_EQ((*v)[t].endings, ref[t].endings);
            EXPECT_EQ((*v)[t].gold, ref[t].gold);
        }
    }
}

TEST(Hellaswag, BadGoldIndexNamesTheLine) {
    for (const char* gold : {"4", "-1", "x", "", "12", "1.0"}) {
        std::string text = kTwoTasks;
        text.replace(text.find("\n0\n") + 1, 1, gold);
        const std::string e = error_of([&] { parse_hellaswag(text, "bad.txt"); });
        EXPECT_NE(e.find("bad.txt: line 8"), std::string::npos) << gold << ": " << e;
        EXPECT_NE(e.find("gold ending index"), std::string::npos) << e;
    }
    const auto spaced = parse_hellaswag("ctx\n 2 \na\nb\nc\nd\n", "spaced.txt");  // spaces around the index are fine
    ASSERT_EQ(spaced.size(), 1u);
    EXPECT_EQ(spaced[0].gold, 2);
}

TEST(Hellaswag, TruncatedTaskEmptyContextAndInvalidUtf8) {
    const std::string cut = kTwoTasks.substr(0, kTwoTasks.find("leaves."));  // task 2 has 3 of 6 lines
    std::string e = error_of([&] { parse_hellaswag(cut, "cut.txt"); });
    EXPECT_NE(e.find("cut.txt: truncated last task"), std::string::npos) << e;
    EXPECT_NE(e.find("line 7"), std::string::npos) << e;
    EXPECT_NE(e.find("only 3 of its 6 lines"), std::string::npos) << e;

    e = error_of([&] { parse_hellaswag("  \n1\na\nb\nc\nd\n", "empty.txt"); });
    EXPECT_NE(e.find("empty.txt: line 1: empty context"), std::string::npos) << e;

    std::string bad = kTwoTasks;
    bad[bad.find("leaves") + 2] = '\xFF';
    e = error_of([&] { parse_hellaswag(bad, "latin1.txt"); });
    EXPECT_NE(e.find("latin1.txt: line 10 is not valid UTF-8 (byte 3 of the line)"), std::string::npos) << e;

    e = error_of([&] { parse_hellaswag("", "none.txt"); });
    EXPECT_NE(e.find("none.txt: no HellaSwag tasks"), std::string::npos) << e;
    e = error_of([&] { parse_hellaswag("\n\n", "none.txt"); });
    EXPECT_NE(e.find("no HellaSwag tasks"), std::string::npos) << e;
}

TEST(CompressedFile, Bzip2IsDetectedByMagicNotExtension) {
    const std::string z = bz2(kTwoTasks);
    EXPECT_TRUE(is_bzip2(z));
    EXPECT_FALSE(is_bzip2(kTwoTasks));
    EXPECT_FALSE(is_bzip2("BZh0"));
    EXPECT_FALSE(is_bzip2("BZ"));
    EXPECT_EQ(bzip2_decompress(z, "mem"), kTwoTasks);

    const TempFile compressed_txt("plain_name.txt", z), plain_bz2("really_plain.bz2", kTwoTasks);
    EXPECT_EQ(read_file_maybe_compressed(compressed_txt.path), kTwoTasks);
    EXPECT_EQ(read_file_maybe_compressed(plain_bz2.path), kTwoTasks);
    EXPECT_EQ(parse_hellaswag(read_file_maybe_compressed(compressed_txt.path), "x").size(), 2u);

    // an empty input compresses to a valid stream with no blocks
    EXPECT_EQ(bzip2_decompress(bz2(""), "empty"), "");
    // concatenated streams (bzip2 -d and pbzip2 output) decode to the concatenation
    EXPECT_EQ(bzip2_decompress(bz2("abc", 1) + bz2(kTwoTasks, 5), "cat"), "abc" + kTwoTasks);
    // larger than one output chunk, several bzip2 blocks
    std::string big;
    for (int i = 0; big.size() < 300000; ++i) big += std::to_string(i * 7919 % 100003) + (i % 13 ? " " : "\n");
    EXPECT_EQ(bzip2_decompress(bz2(big, 1), "big"), big);
    const std::string e = error_of([&] { bzip2_decompress(bz2(big, 1), "big", 1000); });
    EXPECT_NE(e.find("big: decompresses to more than 1000 bytes"), std::string::npos) << e;
}

TEST(CompressedFile, CorruptTruncatedAndTrailingGarbageNameTheFile) {
    std::string big;
    for (int i = 0; big.size() < 50000; ++i) big += kTwoTasks + std::to_string(i) + "\n";
    const std::string z = bz2(big);

    std::string corrupt = z;
    corrupt[corrupt.size() / 2] ^= 0x55;
    const TempFile c("corrupt.bz2", corrupt);
    std::string e = error_of([&] { read_file_maybe_compressed(c.path); });
    EXPECT_NE(e.find(c.path.string() + ": corrupt bzip2 data"), std::string::npos) << e;

    for (size_t keep : {z.size() - 1, z.size() / 2, size_t(14), size_t(4)}) {
        const TempFile t("truncated.bz2", z.substr(0, keep));
        e = error_of([&] { read_file_maybe_compressed(t.path); });
        EXPECT_NE(e.find(t.path.string() + ": "), std::string::npos) << keep << ": " << e;
        EXPECT_TRUE(e.find("truncated bzip2 stream") != std::string::npos ||
                    e.find("corrupt bzip2 data") != std::string::npos) << keep << ": " << e;
    }

    const TempFile g("garbage.bz2", z + "hello");
    e = error_of([&] { read_file_maybe_compressed(g.path); });
    EXPECT_NE(e.find(g.path.string() + ": 5 bytes of trailing data after the bzip2 stream"), std::string::npos) << e;

    std::string bad_magic = z;
    bad_magic[4] = 'X';  // "BZh9" then not a block or end-of-stream header
    e = error_of([&] { bzip2_decompress(bad_magic, "magic.bz2"); });
    EXPECT_NE(e.find("magic.bz2: "), std::string::npos) << e;

    e = error_of([&] { read_file_maybe_compressed("/nonexistent/hellaswag.txt.bz2"); });
    EXPECT_NE(e.find("cannot open /nonexistent/hellaswag.txt.bz2"), std::string::npos) << e;
}

TEST(Hellaswag, RealValidationFileParses) {
    const fs::path path = fs::path(AR_SHARED_DIR) / "data/eval/hellaswag_val_full.txt.bz2";
    const std::string text = read_file_maybe_compressed(path);
    EXPECT_EQ(text.size(), 7770677u);  // as ../shared/data/README.md records
    const auto tasks = parse_hellaswag(text, path.string());
    ASSERT_EQ(tasks.size(), 10042u);
    EXPECT_EQ(tasks[0].context, "Roof shingle removal: A man is sitting on a roof. he");
    EXPECT_EQ(tasks[0].gold, 3);
    EXPECT_EQ(tasks[0].endings[3], "starts pulling up roofing on a roof.");
    EXPECT_EQ(tasks.back().line, 60252 - 5);
    int per_gold[4] = {0, 0, 0, 0};
    for (const auto& t : tasks) per_gold[t.gold]++;
    for (int g = 0; g < 4; ++g) EXPECT_GT(per_gold[g], 2000) << g;
}
