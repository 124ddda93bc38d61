// scripts/llamacpp/compare.mjs — one table row from autoround's and llama.cpp's results for one GGUF file:
// perplexities and their relative difference (must be within --tolerance, 1 % by default), the length of
// the common prefix of the two greedy continuations, and llama.cpp's prefill / decode speed.
// Usage: node compare.mjs --autoround ar.json --greedy "id id ..." --llamacpp lc.json [--tolerance 0.01]
// Exit status 1 when the perplexities differ by more than the tolerance. Used by scripts/gguf_llamacpp_check.sh.
import fs from "node:fs";
import path from "node:path";
import process from "node:process";

const a = {};
for (let i = 2; i < process.argv.length; i += 2) a[process.argv[i].replace(/^--/, "")] = process.argv[i + 1];
const ar = JSON.parse(fs.readFileSync(a.autoround, "utf8"));
const lc = JSON.parse(fs.readFileSync(a.llamacpp, "utf8"));
const tol = Number(a.tolerance ?? "0.01");
const arGreedy = a.greedy.trim().split(/\s+/).map(Number);
const lcGreedy = lc.greedy ?? [];
let same = 0;
while (same < arGreedy.length && same < lcGreedy.length && arGreedy[same] === lcGreedy[same]) ++same;
const rel = Math.abs(ar.ppl - lc.ppl) / lc.ppl;
const ok = rel <= tol && ar.predictions === lc.predictions;
console.log(`| ${path.basename(lc.model)} | ${ar.ppl.toFixed(4)} | ${lc.ppl.toFixed(4)} | ${(100 * rel).toFixed(4)} % | ` +
            `${same}/${Math.min(arGreedy.length, lcGreedy.length)} | ${lc.prefill_tokens_per_second?.toFixed(1)} | ` +
            `${lc.decode_tokens_per_second?.toFixed(1)} | ${ok ? "ok" : "MISMATCH"} |`);
process.exit(ok ? 0 : 1);
