// scripts/llamacpp/gguf_diff.mjs — compares the tensors of two GGUF files by name: same ggml type, same shape,
// byte-identical payload. The header (metadata keys, their order, tensor order, padding) may differ; only
// the tensor data is compared. Prints one JSON line:
//   {"a":..., "b":..., "tensors": N, "identical": K, "type_differs": [...], "data_differs": [...],
//    "only_in_a": [...], "only_in_b": [...], "metadata_differs": [...keys whose values differ...]}
// Exit status 0 always (the caller decides what a difference means), 2 on a read error.
// Usage: node gguf_diff.mjs A.gguf B.gguf        Used by scripts/gguf_accuracy_vs_llamacpp.sh.
import fs from "node:fs";
import process from "node:process";

// ggml_type -> [elements per block, bytes per block] for the types autoround and llama-quantize write.
const BLOCK = {
    0: [1, 4], 1: [1, 2], 2: [32, 18], 3: [32, 20], 6: [32, 22], 7: [32, 24], 8: [32, 34], 9: [32, 36],
    10: [256, 84], 11: [256, 110], 12: [256, 144], 13: [256, 176], 14: [256, 210], 15: [256, 292], 30: [1, 2],
};

function read(file) {
    const buf = fs.readFileSync(file);
    let p = 0;
    const u32 = () => { const v = buf.readUInt32LE(p); p += 4; return v; };
    const u64 = () => { const v = Number(buf.readBigUInt64LE(p)); p += 8; return v; };
    const str = () => { const n = u64(); const s = buf.toString("utf8", p, p + n); p += n; return s; };
    const SIZE = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
    const value = (t) => {
        if (t === 8) return str();
        if (t === 9) {
            const et = u32(), n = u64();
            const out = [];
            for (let i = 0; i < n; ++i) out.push(value(et));
            return out;
        }
        const s = SIZE[t];
        if (s === undefined) throw new Error(`${file}: unknown metadata type ${t}`);
        const raw = buf.subarray(p, p + s).toString("hex");
        p += s;
        return raw;
    };
    if (buf.toString("latin1", 0, 4) !== "GGUF") throw new Error(`${file}: not a GGUF file`);
    p = 4;
    u32(); // version
    const nTensors = u64(), nKv = u64();
    const kv = new Map();
    for (let i = 0; i < nKv; ++i) {
        const k = str(), t = u32();
        kv.set(k, JSON.stringify([t, value(t)]));
    }
    const align = kv.has("general.alignment") ? Number.parseInt(JSON.parse(kv.get("general.alignment"))[1]
        .match(/../g).reverse().join(""), 16) : 32;
    const tensors = new Map();
    for (let i = 0; i < nTensors; ++i) {
        const name = str(), nd = u32();
        const dims = [];
        for (let d = 0; d < nd; ++d) dims.push(u64());
        const type = u32(), offset = u64();
        tensors.set(name, { dims, type, offset });
    }
    const dataStart = Math.ceil(p / align) * align;
    for (const t of tensors.values()) {
        const b = BLOCK[t.type];
        if (!b) throw new Error(`${file}: ggml type ${t.type} not in this script's table`);
        const n = t.dims.reduce((x, y) => x * y, 1);
        t.data = buf.subarray(dataStart + t.offset, dataStart + t.offset + (n / b[0]) * b[1]);
    }
    return { kv, tensors };
}

try {
    const [fa, fb] = process.argv.slice(2);
    const a = read(fa), b = read(fb);
    const out = { a: fa, b: fb, tensors: a.tensors.size, identical: 0, type_differs: [], data_differs: [],
                  only_in_a: [], only_in_b: [], metadata_differs: [] };
    for (const [name, ta] of a.tensors) {
        const tb = b.tensors.get(name);
        if (!tb) { out.only_in_a.push(name); continue; }
        if (ta.type !== tb.type || ta.dims.join("x") !== tb.dims.join("x"))
            out.type_differs.push(`${name} (${ta.type} ${ta.dims.join("x")} vs ${tb.type} ${tb.dims.join("x")})`);
        else if (!ta.data.equals(tb.data)) out.data_differs.push(name);
        else ++out.identical;
    }
    for (const name of b.tensors.keys()) if (!a.tensors.has(name)) out.only_in_b.push(name);
    const keys = new Set([...a.kv.keys(), ...b.kv.keys()]);
    for (const k of keys) if (a.kv.get(k) !== b.kv.get(k)) out.metadata_differs.push(k);
    console.log(JSON.stringify(out));
} catch (e) {
    console.error(`gguf_diff: ${e.message}`);
    process.exit(2);
}
