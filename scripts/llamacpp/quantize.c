/* scripts/llamacpp/quantize.c — llama.cpp's own quantization (what its `llama-quantize` tool does, without an
 * importance matrix) of a GGUF file, through the prebuilt libllama that node-llama-cpp ships. node-llama-cpp
 * does not expose quantization in JavaScript, but its shared library exports the C API, so this program
 * dlopens it and calls llama_model_quantize(). Used by scripts/gguf_accuracy_vs_llamacpp.sh (issue 7).
 *
 * Build: cc -O1 -o quantize scripts/llamacpp/quantize.c -ldl
 * Usage: quantize [--lib libllama.so] [--threads N] [--verbose] IN.gguf OUT.gguf TYPE
 *   TYPE: q4_0 q4_1 q8_0 q4_k_s q4_k_m q6_k (case-insensitive), or a llama_ftype number.
 *   The library: --lib, else $LLAMA_LIB, else $LLAMACPP_DIR (default build-llamacpp) +
 *   /node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libllama.v0.5.0.so.
 * Exit status 0 on success.
 *
 * The parameter struct (include/llama.h of the llama.cpp that node-llama-cpp 3.22.1 bundles, release v0.5.0):
 *   struct llama_model_quantize_params {
 *       int32_t nthread;                 offset 0
 *       enum llama_ftype ftype;          offset 4
 *       enum ggml_type output_tensor_type;      offset 8
 *       enum ggml_type token_embedding_type;    offset 12
 *       bool allow_requantize;           offset 16
 *       bool quantize_output_tensor;     offset 17
 *       ... further bools, pointers and a size_t (about 64 bytes in all)
 *   };
 * Only these leading fields are declared here; the rest is left as llama_model_quantize_default_params()
 * filled it in. The function returns the struct by value; on x86-64 SysV a struct larger than 16 bytes is
 * returned through a hidden pointer the caller provides (sret), so declaring a much larger struct here makes
 * the callee write into memory we own whatever the real size is. The defaults are checked at run time
 * (nthread 0, ftype Q8_0, quantize_output_tensor true) so a changed layout fails loudly instead of
 * quantizing to the wrong type.
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

typedef struct {
    int32_t nthread;
    int32_t ftype;
    int32_t output_tensor_type;
    int32_t token_embedding_type;
    uint8_t allow_requantize;
    uint8_t quantize_output_tensor;
    uint8_t rest[512 - 18]; /* the real struct is smaller; see the comment above */
} quantize_params;

typedef quantize_params (*default_params_fn)(void);
typedef uint32_t (*quantize_fn)(const char *, const char *, const quantize_params *);
typedef void (*backend_init_fn)(void);
typedef void (*log_callback)(int level, const char *text, void *user_data);
typedef void (*log_set_fn)(log_callback, void *);

static const struct { const char *name; int ftype; } kTypes[] = {
    {"q4_0", 2}, {"q4_1", 3}, {"q8_0", 7}, {"q4_k_s", 14}, {"q4_k_m", 15}, {"q6_k", 18},
};

static int g_verbose = 0;
static int g_last_level = 0;

/* Keeps warnings and errors (and their continuation lines) unless --verbose. */
static void log_filter(int level, const char *text, void *user_data) {
    (void)user_data;
    if (level != 5 /* GGML_LOG_LEVEL_CONT */) g_last_level = level;
    if (g_verbose || g_last_level >= 3 /* GGML_LOG_LEVEL_WARN */) fputs(text, stderr);
}

static void *sym(void *lib, const char *name) {
    void *p = dlsym(lib, name);
    if (!p) {
        fprintf(stderr, "quantize: %s not found in the library: %s\n", name, dlerror());
        exit(1);
    }
    return p;
}

static int parse_type(const char *s) {
    for (size_t i = 0; i < sizeof kTypes / sizeof kTypes[0]; ++i)
        if (strcasecmp(s, kTypes[i].name) == 0) return kTypes[i].ftype;
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (end != s && *end == '\0' && v > 0 && v < 1024) return (int)v;
    return -1;
}

int main(int argc, char **argv) {
    const char *lib_path = getenv("LLAMA_LIB");
    int threads = 0;
    const char *pos[3];
    int npos = 0;
    for (int i = 1; i < argc; ++i) {
        if (strcmp(argv[i], "--lib") == 0 && i + 1 < argc) lib_path = argv[++i];
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--verbose") == 0) g_verbose = 1;
        else if (npos < 3 && argv[i][0] != '-') pos[npos++] = argv[i];
        else { npos = -1; break; }
    }
    if (npos != 3) {
        fprintf(stderr, "usage: quantize [--lib libllama.so] [--threads N] [--verbose] IN.gguf OUT.gguf TYPE\n"
                        "  TYPE: q4_0 q4_1 q8_0 q4_k_s q4_k_m q6_k or a llama_ftype number\n");
        return 2;
    }
    int ftype = parse_type(pos[2]);
    if (ftype < 0) {
        fprintf(stderr, "quantize: unknown type %s\n", pos[2]);
        return 2;
    }

    char buf[4096];
    if (!lib_path || !*lib_path) {
        const char *dir = getenv("LLAMACPP_DIR");
        snprintf(buf, sizeof buf, "%s/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libllama.v0.5.0.so",
                 dir && *dir ? dir : "build-llamacpp");
        lib_path = buf;
    }
    void *lib = dlopen(lib_path, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "quantize: cannot load %s: %s\n", lib_path, dlerror());
        return 1;
    }
    default_params_fn default_params = (default_params_fn)sym(lib, "llama_model_quantize_default_params");
    quantize_fn quantize = (quantize_fn)sym(lib, "llama_model_quantize");
    backend_init_fn backend_init = (backend_init_fn)sym(lib, "llama_backend_init");
    log_set_fn log_set = (log_set_fn)sym(lib, "llama_log_set");

    log_set(log_filter, NULL);
    backend_init();

    quantize_params p;
    memset(&p, 0xA5, sizeof p);
    p = default_params();
    if (p.nthread != 0 || p.ftype != 7 || p.allow_requantize != 0 || p.quantize_output_tensor != 1) {
        fprintf(stderr, "quantize: unexpected default parameters (nthread %d ftype %d allow_requantize %d "
                        "quantize_output_tensor %d): the library's struct layout differs from this program's\n",
                p.nthread, p.ftype, p.allow_requantize, p.quantize_output_tensor);
        return 1;
    }
    p.nthread = threads;
    p.ftype = ftype;

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint32_t rc = quantize(pos[0], pos[1], &p);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (rc != 0) {
        fprintf(stderr, "quantize: llama_model_quantize(%s -> %s, ftype %d) failed (%u)\n", pos[0], pos[1], ftype, rc);
        return 1;
    }
    fprintf(stderr, "quantize: %s -> %s (llama_ftype %d) in %.1f s\n", pos[0], pos[1], ftype,
            (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    return 0;
}
