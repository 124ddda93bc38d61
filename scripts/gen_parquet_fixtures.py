#!/usr/bin/env python3
"""scripts/gen_parquet_fixtures.py — writes the small Parquet files under tests/data/parquet/ that
tests/io/test_parquet_reader.cpp reads (one per encoding / page version / codec combination).

Which tool made them:
  * own_*.parquet  — this script's own minimal Parquet writer (below; Python 3 stdlib only), written
    from the Parquet format spec (apache/parquet-format: parquet.thrift, Encodings.md) because pyarrow
    is not installed on the development machine. Codecs: GZIP via zlib (gzip container); SNAPPY as a
    valid literal-only snappy stream; ZSTD as a valid zstd frame of raw blocks (RFC 8878). These are
    spec-conformant encodings chosen for simplicity; decoding goes through libsnappy/libzstd/zlib.
  * pa_*.parquet   — pyarrow (real-world writer), made with `--pyarrow` where pyarrow is available
    (the GPU machine); the version that wrote them is stored in pa_VERSION.txt.

Every file holds the same rows: text(i) for i in range(N_ROWS) (None where null(i) in the nullable
ones) — keep text()/null() in sync with tests/io/test_parquet_reader.cpp. Some files have an INT64
column `id` before `text` so that column selection and type errors are tested too.

Usage: python3 scripts/gen_parquet_fixtures.py [--pyarrow] [--out tests/data/parquet]
"""
import argparse
import gzip
import io
import os
import struct
import sys

N_ROWS = 37
WORDS = ["alpha ", "beta ", "gamma ", "δέλτα ✓ ", ""]


def text(i):
    return "row %d: %s" % (i % 11, WORDS[i % 5] * (1 + i % 3))


def null(i):
    return i % 7 == 3


# ---- Thrift compact protocol (encoder) ----------------------------------------------------------
def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def zigzag(n):
    return varint((n << 1) ^ (n >> 63))


I32, I64, BIN, LIST, STRUCT, TRUE, FALSE = 5, 6, 8, 9, 12, 1, 2


def tstruct(fields):
    """fields: list of (id, type, value) in increasing id order; value for STRUCT is a field list,
    for LIST a (elem_type, [values])."""
    out = bytearray()
    last = 0
    for fid, typ, val in fields:
        if typ == "bool":
            typ = TRUE if val else FALSE
        delta = fid - last
        if 0 < delta <= 15:
            out.append((delta << 4) | typ)
        else:
            out.append(typ)
            out += zigzag(fid)
        last = fid
        out += tvalue(typ, val)
    out.append(0)
    return bytes(out)


def tvalue(typ, val):
    if typ in (TRUE, FALSE):
        return b""
    if typ in (I32, I64):
        return zigzag(val)
    if typ == BIN:
        b = val.encode() if isinstance(val, str) else val
        return varint(len(b)) + b
    if typ == STRUCT:
        return tstruct(val)
    if typ == LIST:
        et, items = val
        head = bytes([(len(items) << 4) | et]) if len(items) < 15 else bytes([0xF0 | et]) + varint(len(items))
        return head + b"".join(tvalue(et, x) for x in items)
    raise ValueError(typ)


# ---- encodings ------------------------------------------------------------------------------------
def plain_byte_array(values):
    out = bytearray()
    for v in values:
        b = v.encode()
        out += struct.pack("<I", len(b)) + b
    return bytes(out)


def rle_run(value, count, bit_width):
    return varint(count << 1) + value.to_bytes((bit_width + 7) // 8, "little")


def bit_packed(values, bit_width):
    """One bit-packed run (values padded to a multiple of 8)."""
    vals = list(values) + [0] * (-len(values) % 8)
    acc, nbits, out = 0, 0, bytearray()
    for v in vals:
        acc |= v << nbits
        nbits += bit_width
        while nbits >= 8:
            out.append(acc & 0xFF)
            acc >>= 8
            nbits -= 8
    return varint(((len(vals) // 8) << 1) | 1) + bytes(out)


def def_levels(present):
    """Definition levels (bit width 1) as alternating RLE runs: exercises the RLE branch."""
    out, i = bytearray(), 0
    while i < len(present):
        j = i
        while j < len(present) and present[j] == present[i]:
            j += 1
        out += rle_run(1 if present[i] else 0, j - i, 1)
        i = j
    return bytes(out)


def delta_binary_packed(values):
    block, minis = 128, 4
    per = block // minis
    out = bytearray(varint(block) + varint(minis) + varint(len(values)) + zigzag(values[0] if values else 0))
    deltas = [values[k] - values[k - 1] for k in range(1, len(values))]
    for b in range(0, len(deltas), block):
        chunk = deltas[b:b + block]
        mn = min(chunk)
        out += zigzag(mn)
        rel = [d - mn for d in chunk] + [0] * (block - len(chunk))
        widths, packed = [], bytearray()
        for m in range(minis):
            mv = rel[m * per:(m + 1) * per]
            w = max(mv).bit_length()
            widths.append(w)
            if w:
                acc, nb = 0, 0
                for v in mv:
                    acc |= v << nb
                    nb += w
                packed += acc.to_bytes(per * w // 8, "little")
        out += bytes(widths) + packed
    return bytes(out)


# ---- codecs ----------------------------------------------------------------------------------------
def snappy_literal(data):
    out = bytearray(varint(len(data)))
    for k in range(0, len(data), 60):
        chunk = data[k:k + 60]
        out.append((len(chunk) - 1) << 2)  # literal tag, length-1 in the upper 6 bits
        out += chunk
    return bytes(out)


def zstd_raw(data):
    # frame header: magic, FHD = single segment + 4-byte content size (FCS flag 2)
    out = bytearray(struct.pack("<I", 0xFD2FB528))
    out.append(0b10100000)
    out += struct.pack("<I", len(data))
    blocks = [data[k:k + 100] for k in range(0, len(data), 100)] or [b""]
    for n, blk in enumerate(blocks):
        last = 1 if n == len(blocks) - 1 else 0
        hdr = (len(blk) << 3) | (0 << 1) | last  # Raw_Block
        out += hdr.to_bytes(3, "little") + blk
    return bytes(out)


def compress(codec, data):
    if codec == 0:
        return data
    if codec == 1:
        return snappy_literal(data)
    if codec == 2:
        buf = io.BytesIO()
        with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as g:
            g.write(data)
        return buf.getvalue()
    if codec == 6:
        return zstd_raw(data)
    raise ValueError(codec)


# ---- pages and files ------------------------------------------------------------------------------
def page(ptype, usize, body, header_field):
    hdr = tstruct([(1, I32, ptype), (2, I32, usize), (3, I32, len(body))] + [header_field])
    return hdr + body


def data_page(values, present, encoding, codec, version, dictionary=None, optional=True):
    """values: the non-null values (strings); present: bool per row."""
    n = len(present)
    if encoding == "plain":
        vbytes, enc = plain_byte_array(values), 0
    elif encoding == "dict":
        idx = [dictionary.index(v) for v in values]
        bw = max(1, (len(dictionary) - 1).bit_length())
        vbytes, enc = bytes([bw]) + bit_packed(idx, bw), 8
    elif encoding == "delta_length":
        lens = [len(v.encode()) for v in values]
        vbytes, enc = delta_binary_packed(lens) + b"".join(v.encode() for v in values), 6
    levels = def_levels(present) if optional else b""
    if version == 1:
        raw = (struct.pack("<I", len(levels)) + levels if optional else b"") + vbytes
        body = compress(codec, raw)
        hdr = (5, STRUCT, [(1, I32, n), (2, I32, enc), (3, I32, 3), (4, I32, 3)])
        return page(0, len(raw), body, hdr)
    comp = compress(codec, vbytes)
    body = levels + comp
    nulls = n - sum(present)
    hdr = (8, STRUCT, [(1, I32, n), (2, I32, nulls), (3, I32, n), (4, I32, enc), (5, I32, len(levels)),
                       (6, I32, 0), (7, "bool", codec != 0)])
    return page(3, len(levels) + len(vbytes), body, hdr)


def dict_page(dictionary, codec):
    raw = plain_byte_array(dictionary)
    return page(2, len(raw), compress(codec, raw), (7, STRUCT, [(1, I32, len(dictionary)), (2, I32, 0)]))


def int64_plain_page(ids):
    raw = b"".join(struct.pack("<q", v) for v in ids)
    return page(0, len(raw), raw, (5, STRUCT, [(1, I32, len(ids)), (2, I32, 0), (3, I32, 3), (4, I32, 3)]))


def write_file(path, *, optional=True, encoding="plain", codec=0, version=1, row_groups=1, pages_per_group=1,
               with_id=False, fallback=False):
    rows = list(range(N_ROWS))
    groups = [rows[k::row_groups] for k in range(row_groups)]
    groups = [sorted(g) for g in groups]
    # contiguous row groups
    size = (N_ROWS + row_groups - 1) // row_groups
    groups = [rows[k:k + size] for k in range(0, N_ROWS, size)]
    out = bytearray(b"PAR1")
    rg_structs = []
    for g in groups:
        chunks = []
        if with_id:
            off = len(out)
            out += int64_plain_page(g)
            meta = [(1, I32, 2), (2, LIST, (I32, [0, 3])), (3, LIST, (BIN, ["id"])), (4, I32, 0), (5, I64, len(g)),
                    (6, I64, len(out) - off), (7, I64, len(out) - off), (9, I64, off)]
            chunks.append([(2, I64, off), (3, STRUCT, meta)])
        present = [not (optional and null(i)) for i in g]
        vals_all = [text(i) for i in g]
        dictionary = sorted(set(v for v, p in zip(vals_all, present) if p)) if encoding == "dict" else None
        start = len(out)
        dict_off = None
        if dictionary is not None:
            dict_off = len(out)
            out += dict_page(dictionary, codec)
        data_off = len(out)
        per = (len(g) + pages_per_group - 1) // pages_per_group
        for pk, k in enumerate(range(0, len(g), per)):
            pres = present[k:k + per]
            vals = [v for v, p in zip(vals_all[k:k + per], pres) if p]
            enc = "plain" if (fallback and pk > 0) else encoding
            out += data_page(vals, pres, enc, codec, version, dictionary, optional)
        encs = {"plain": [0, 3], "dict": [0, 3, 8], "delta_length": [6, 3]}[encoding]
        meta = [(1, I32, 6), (2, LIST, (I32, encs)), (3, LIST, (BIN, ["text"])), (4, I32, codec),
                (5, I64, len(g)), (6, I64, len(out) - start), (7, I64, len(out) - start), (9, I64, data_off)]
        if dict_off is not None:
            meta.append((11, I64, dict_off))
        chunks.append([(2, I64, data_off), (3, STRUCT, meta)])
        rg_structs.append([(1, LIST, (STRUCT, chunks)), (2, I64, len(out) - start), (3, I64, len(g))])
    schema = [[(4, BIN, "schema"), (5, I32, 2 if with_id else 1)]]
    if with_id:
        schema.append([(1, I32, 2), (3, I32, 0), (4, BIN, "id")])
    schema.append([(1, I32, 6), (3, I32, 1 if optional else 0), (4, BIN, "text"), (6, I32, 0)])
    fmd = tstruct([(1, I32, 1), (2, LIST, (STRUCT, schema)), (3, I64, N_ROWS), (4, LIST, (STRUCT, rg_structs)),
                   (6, BIN, "autoround.cpp scripts/gen_parquet_fixtures.py")])
    out += fmd + struct.pack("<I", len(fmd)) + b"PAR1"
    with open(path, "wb") as f:
        f.write(out)


OWN = {
    "own_plain_v1_none_required.parquet": dict(optional=False, encoding="plain", codec=0, version=1),
    "own_plain_v1_snappy.parquet": dict(encoding="plain", codec=1, version=1, pages_per_group=3),
    "own_dict_v1_gzip.parquet": dict(encoding="dict", codec=2, version=1, row_groups=2, pages_per_group=2),
    "own_dict_v2_zstd.parquet": dict(encoding="dict", codec=6, version=2, with_id=True),
    "own_plain_v2_none.parquet": dict(encoding="plain", codec=0, version=2, pages_per_group=2),
    "own_plain_v2_snappy_id.parquet": dict(encoding="plain", codec=1, version=2, with_id=True, row_groups=3),
    "own_delta_length_v1_zstd.parquet": dict(encoding="delta_length", codec=6, version=1),
    "own_dict_fallback_v1_snappy.parquet": dict(encoding="dict", codec=1, version=1, pages_per_group=3,
                                                 fallback=True),
}


def write_pyarrow(out):
    import pyarrow as pa
    import pyarrow.parquet as pq
    texts = [None if null(i) else text(i) for i in range(N_ROWS)]
    table = pa.table({"id": pa.array(range(N_ROWS), pa.int64()), "text": pa.array(texts, pa.string())})
    for codec in ["none", "snappy", "gzip", "zstd"]:
        for version in ["1.0", "2.0"]:
            for dictionary in [True, False]:
                name = "pa_%s_v%s_%s.parquet" % ("dict" if dictionary else "plain", version[0], codec)
                pq.write_table(table, os.path.join(out, name), compression=codec, data_page_version=version,
                               use_dictionary=dictionary, row_group_size=16, data_page_size=64)
    # dictionary that overflows into PLAIN pages mid-chunk
    pq.write_table(table, os.path.join(out, "pa_dict_fallback_v1_snappy.parquet"), compression="snappy",
                   use_dictionary=True, dictionary_pagesize_limit=40, data_page_size=64)
    pq.write_table(table, os.path.join(out, "pa_delta_length_v2_zstd.parquet"), compression="zstd",
                   data_page_version="2.0", use_dictionary=False,
                   column_encoding={"text": "DELTA_LENGTH_BYTE_ARRAY", "id": "PLAIN"})
    with open(os.path.join(out, "pa_VERSION.txt"), "w") as f:
        f.write("pyarrow %s\n" % pa.__version__)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "data", "parquet"))
    ap.add_argument("--pyarrow", action="store_true", help="write the pa_*.parquet files with pyarrow")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    if a.pyarrow:
        write_pyarrow(a.out)
        return 0
    for name, kw in OWN.items():
        write_file(os.path.join(a.out, name), **kw)
    return 0


if __name__ == "__main__":
    sys.exit(main())
