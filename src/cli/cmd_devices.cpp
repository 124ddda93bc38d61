// cli/cmd_devices.cpp — `autoround devices`: the CPU threads and the CUDA devices this build can use.
#include <omp.h>

#include <cstdio>

#include "cli/common.h"
#include "ops/cuda/device_info.h"

namespace autoround::cli {

void add_devices_command(CLI::App& root) {
    CLI::App* c = root.add_subcommand("devices", "List the compute devices this build can use");
    c->callback([] {
        std::printf("cpu   %d OpenMP threads\n", omp_get_max_threads());
#ifdef AUTOROUND_HAVE_CUDA
        const auto devs = cuda_list_devices();
        if (devs.empty()) std::printf("cuda  built with CUDA, but no device is visible\n");
        for (const auto& d : devs)
            std::printf("cuda:%d %s, sm_%d%d, %d SMs, %.1f GiB\n", d.index, d.name.c_str(), d.sm_major, d.sm_minor,
                        d.multiprocessors, d.total_memory / 1073741824.0);
#else
        std::printf("cuda  not built (configure with -DAUTOROUND_CUDA=ON)\n");
#endif
    });
}

}  // namespace autoround::cli
