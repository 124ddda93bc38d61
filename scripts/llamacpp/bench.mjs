// scripts/llamacpp/bench.mjs — prefill and decode speed of one GGUF file in the real llama.cpp (node-llama-cpp's
// prebuilt CPU library), measured the way bench/bench_inference.cpp measures autoround, and printed as one
// JSON line: prefill = a --prompt-tokens prompt evaluated from an empty KV cache; decode = --decode-tokens
// greedy tokens after a --decode-prompt-tokens prompt (timed from the first generated token, so the prompt is
// not counted). Best of --reps runs of each; synthetic token ids ((i·7919 + 13) mod 8192).
//
// Usage: LLAMACPP_DIR=build-llamacpp node bench.mjs --model FILE.gguf [--threads 2] [--prompt-tokens 128]
//        [--decode-tokens 64] [--decode-prompt-tokens 8] [--reps 3]
// Run by scripts/gguf_speed_vs_llamacpp.sh (which installs node-llama-cpp like scripts/gguf_llamacpp_check.sh).
import fs from "node:fs";
import path from "node:path";
import process from "node:process";
import { pathToFileURL } from "node:url";

const pkgDir = path.resolve(process.env.LLAMACPP_DIR ?? "build-llamacpp", "node_modules", "node-llama-cpp");
const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, "package.json"), "utf8"));
const { getLlama, LlamaLogLevel } = await import(pathToFileURL(path.join(pkgDir, "dist", "index.js")).href);

function args() {
    const a = { threads: 2, promptTokens: 128, decodeTokens: 64, decodePromptTokens: 8, reps: 3 };
    const v = process.argv.slice(2);
    for (let i = 0; i < v.length; i += 2) {
        const k = v[i], x = v[i + 1];
        if (k === "--model") a.model = x;
        else if (k === "--threads") a.threads = Number(x);
        else if (k === "--prompt-tokens") a.promptTokens = Number(x);
        else if (k === "--decode-tokens") a.decodeTokens = Number(x);
        else if (k === "--decode-prompt-tokens") a.decodePromptTokens = Number(x);
        else if (k === "--reps") a.reps = Number(x);
        else throw new Error(`unknown argument ${k}`);
    }
    if (!a.model) throw new Error("usage: bench.mjs --model FILE.gguf [...]");
    return a;
}

const a = args();
const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error, maxThreads: a.threads });
const model = await llama.loadModel({ modelPath: a.model, gpuLayers: 0 });
const ctxSize = Math.max(a.promptTokens, a.decodePromptTokens + a.decodeTokens) + 16;
const context = await model.createContext({ contextSize: ctxSize, batchSize: a.promptTokens,
                                            threads: { ideal: a.threads, min: a.threads } });
const seq = context.getSequence();
// Synthetic prompt ids below 8192 (valid for every Qwen3 vocabulary; the bench's ids are the same for qwen3-nano).
const ids = (n) => Array.from({ length: n }, (_, i) => (i * 7919 + 13) % 8192);

// warm-up: touch every weight page once
await seq.clearHistory();
await seq.evaluateWithoutGeneratingNewTokens(ids(8));

let bestPrefill = Infinity, bestDecode = Infinity;
for (let r = 0; r < a.reps; ++r) {
    await seq.clearHistory();
    const t0 = performance.now();
    await seq.evaluateWithoutGeneratingNewTokens(ids(a.promptTokens));
    bestPrefill = Math.min(bestPrefill, (performance.now() - t0) / 1000);

    await seq.clearHistory();
    let n = 0, first = 0;
    for await (const t of seq.evaluate(ids(a.decodePromptTokens), { temperature: 0 })) {
        if (n === 0) first = performance.now();
        if (++n > a.decodeTokens) break;  // the first token ends the prompt; then decodeTokens decode steps
    }
    bestDecode = Math.min(bestDecode, (performance.now() - first) / 1000);
}
console.log(JSON.stringify({
    model: a.model, node_llama_cpp: pkg.version, threads: a.threads, reps: a.reps,
    prompt_tokens: a.promptTokens, prefill_tps: a.promptTokens / bestPrefill,
    decode_tokens: a.decodeTokens, decode_tps: a.decodeTokens / bestDecode,
}));
await context.dispose();
await model.dispose();
