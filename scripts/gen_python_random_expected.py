#!/usr/bin/env python3
"""scripts/gen_python_random_expected.py — prints the expected values that
tests/quant/test_python_random.cpp checks quant/python_random.{h,cpp} against.

Why: the C++ PythonRandom must reproduce CPython's `random` module bit for bit (auto-round's
IndexSampler shuffles with the global Python generator seeded with 42). The test runs this script
through python3 when it is installed and otherwise uses the table checked in beside the test
(which is this script's output, pasted). Output: one line per case, "name: v1 v2 ...".
"""
import random


def index_sampler_batches(nsamples, batch_size, count):
    # auto-round compressors/utils.py IndexSampler, driven by the global generator
    indices = list(range(nsamples))
    random.shuffle(indices)
    index = 0
    out = []
    for _ in range(count):
        if index + batch_size > nsamples:
            random.shuffle(indices)
            index = 0
        out.extend(indices[index:index + batch_size])
        index += batch_size
    return out


def main():
    random.seed(42)
    print("bits32_seed42:", *[random.getrandbits(32) for _ in range(8)])
    random.seed(42)
    print("random_seed42:", *[repr(random.random()) for _ in range(4)])
    random.seed(0)
    print("bits32_seed0:", *[random.getrandbits(32) for _ in range(4)])
    random.seed(2**40 + 5)
    print("bits64_bigseed:", *[random.getrandbits(64) for _ in range(3)])
    random.seed(7)
    print("bits_mixed_seed7:", *[random.getrandbits(k) for k in (1, 5, 17, 31, 33, 47, 63)])
    random.seed(42)
    print("randbelow_seed42:", *[random.randrange(n) for n in (1000, 3, 2, 129, 1 << 20, 12345)])
    random.seed(42)
    x = list(range(20))
    random.shuffle(x)
    print("shuffle20_seed42:", *x)
    random.seed(42)
    # two blocks of tuning: 10 samples, global batch 4, 5 iterations each; the stream continues
    a = index_sampler_batches(10, 4, 5)
    b = index_sampler_batches(10, 4, 5)
    print("sampler_10_4_block0:", *a)
    print("sampler_10_4_block1:", *b)
    random.seed(42)
    print("sampler_128_8:", *index_sampler_batches(128, 8, 20))


if __name__ == "__main__":
    main()
