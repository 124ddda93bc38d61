// core/atomic_dir.cpp — see atomic_dir.h.
#include "core/atomic_dir.h"

#include <unistd.h>

#include "core/error.h"

namespace fs = std::filesystem;

namespace autoround {

AtomicDir::AtomicDir(fs::path final_path, bool overwrite) : final_(std::move(final_path)), overwrite_(overwrite) {
    if (final_.filename().empty()) final_ = final_.parent_path();
    if (fs::exists(final_) && !overwrite_) {
        check(fs::is_directory(final_) && fs::is_empty(final_), "output ", final_.string(),
              " already exists; choose another folder or pass --overwrite");
    }
    const fs::path parent = final_.has_parent_path() ? final_.parent_path() : fs::path(".");
    std::error_code ec;
    fs::create_directories(parent, ec);
    check(!ec, "cannot create ", parent.string(), ": ", ec.message());
    tmp_ = parent / ("." + final_.filename().string() + ".tmp-" + std::to_string(::getpid()));
    fs::remove_all(tmp_, ec);
    fs::create_directory(tmp_, ec);
    check(!ec, "cannot create temporary output folder ", tmp_.string(), ": ", ec.message());
}

AtomicDir::~AtomicDir() {
    if (!committed_) {
        std::error_code ec;
        fs::remove_all(tmp_, ec);
    }
}

void AtomicDir::commit() {
    std::error_code ec;
    if (fs::exists(final_)) {
        fs::remove_all(final_, ec);
        check(!ec, "cannot replace ", final_.string(), ": ", ec.message());
    }
    fs::rename(tmp_, final_, ec);
    check(!ec, "cannot move ", tmp_.string(), " to ", final_.string(), ": ", ec.message());
    committed_ = true;
}

}  // namespace autoround
