// scripts/llamacpp/check_gguf.mjs — runs one GGUF file in the real llama.cpp (through node-llama-cpp's
// prebuilt CPU library) and prints one JSON line: perplexity over given token ids with autoround's
// `eval ppl` windowing (non-overlapping windows of --seqlen, each from an empty KV cache, no BOS, positions
// 1..len-1 scored from the logits before them, a last partial window dropped), the greedy continuation of
// given prompt ids, and prefill / decode speed.
//
// Why token ids and not text: both sides must score the same positions; autoround tokenizes once
// (`autoround tokenize --json`), so a tokenizer difference cannot hide in a perplexity difference. The
// number of tokens llama.cpp's own tokenizer makes of the text is reported too (`llama_tokens`).
//
// Usage: LLAMACPP_DIR=build-llamacpp node check_gguf.mjs --model FILE.gguf --ids ids.json
//        [--prompt-ids prompt.json] [--text FILE] [--seqlen 1024] [--max-tokens 0] [--new-tokens 32] [--threads 2]
// Run by scripts/gguf_llamacpp_check.sh, which installs node-llama-cpp into $LLAMACPP_DIR (build-llamacpp/,
// outside the source tree; the package is imported from there, not resolved next to this file).
import fs from "node:fs";
import path from "node:path";
import process from "node:process";
import { pathToFileURL } from "node:url";

const pkgDir = path.resolve(process.env.LLAMACPP_DIR ?? "build-llamacpp", "node_modules", "node-llama-cpp");
const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, "package.json"), "utf8"));
const { getLlama, LlamaLogLevel } = await import(pathToFileURL(path.join(pkgDir, "dist", "index.js")).href);

function args() {
    const a = { seqlen: 1024, maxTokens: 0, newTokens: 32, threads: 2 };
    const v = process.argv.slice(2);
    for (let i = 0; i < v.length; i += 2) {
        const k = v[i], x = v[i + 1];
        if (k === "--model") a.model = x;
        else if (k === "--ids") a.ids = x;
        else if (k === "--prompt-ids") a.promptIds = x;
        else if (k === "--text") a.text = x;
        else if (k === "--seqlen") a.seqlen = Number(x);
        else if (k === "--max-tokens") a.maxTokens = Number(x);
        else if (k === "--new-tokens") a.newTokens = Number(x);
        else if (k === "--threads") a.threads = Number(x);
        else throw new Error(`unknown argument ${k}`);
    }
    if (!a.model || !a.ids) throw new Error("usage: check_gguf.mjs --model FILE.gguf --ids ids.json [...]");
    return a;
}

const a = args();
const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
const model = await llama.loadModel({ modelPath: a.model, gpuLayers: 0 });
const context = await model.createContext({ contextSize: a.seqlen, batchSize: a.seqlen, threads: a.threads });
const seq = context.getSequence();
const out = { model: a.model, node_llama_cpp: pkg.version };

// ---- perplexity ----------------------------------------------------------------------------------------
let ids = JSON.parse(fs.readFileSync(a.ids, "utf8"));
if (a.maxTokens > 0 && ids.length > a.maxTokens) ids = ids.slice(0, a.maxTokens);
const windows = Math.floor(ids.length / a.seqlen);
let nll = 0, predictions = 0;
const t0 = performance.now();
for (let w = 0; w < windows; ++w) {
    const win = ids.slice(w * a.seqlen, (w + 1) * a.seqlen);
    await seq.clearHistory();
    const input = win.map((t, i) => i + 1 < win.length
        ? [t, { generateNext: { logits: true, totalLogitWeight: true } }]
        : t);
    const res = await seq.controlledEvaluate(input);
    for (let i = 0; i + 1 < win.length; ++i) {
        const n = res[i].next;
        // All logits (a filtered map would also shrink totalLogitWeight to the filtered tokens); the map is
        // sorted, highest first; totalLogitWeight = sum exp(logit - max) over the vocabulary.
        const maxLogit = n.logits.values().next().value;
        const logp = n.logits.get(win[i + 1]) - maxLogit - Math.log(n.totalLogitWeight);
        nll -= logp;
        ++predictions;
    }
}
const t1 = performance.now();
out.windows = windows;
out.predictions = predictions;
out.mean_nll = nll / predictions;
out.ppl = Math.exp(out.mean_nll);
out.ppl_tokens_per_second = (windows * a.seqlen) / ((t1 - t0) / 1000);

// ---- greedy continuation and speed ----------------------------------------------------------------------
if (a.promptIds) {
    const prompt = JSON.parse(fs.readFileSync(a.promptIds, "utf8"));
    await seq.clearHistory();
    const gen = [];
    const g0 = performance.now();
    let first = 0;
    for await (const t of seq.evaluate(prompt, { temperature: 0 })) {
        if (gen.length === 0) first = performance.now();
        gen.push(t);
        if (gen.length >= a.newTokens) break;
    }
    const g1 = performance.now();
    out.greedy = gen;
    out.prefill_tokens_per_second = prompt.length / ((first - g0) / 1000);
    out.decode_tokens_per_second = (gen.length - 1) / ((g1 - first) / 1000);
}
if (a.text) out.llama_tokens = model.tokenize(fs.readFileSync(a.text, "utf8"), false).length;

console.log(JSON.stringify(out));
await context.dispose();
await model.dispose();
