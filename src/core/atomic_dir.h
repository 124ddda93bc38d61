// core/atomic_dir.h — write an output folder atomically: everything goes into a hidden temporary
// sibling (`.OUT.tmp-<pid>`), and commit() renames it into place. If the writer fails or throws,
// the destructor removes the temporary folder, so no half-written output is ever left at OUT.
#pragma once

#include <filesystem>

namespace autoround {

class AtomicDir {
public:
    // Fails if `final_path` exists and is not an empty directory, unless overwrite is set.
    AtomicDir(std::filesystem::path final_path, bool overwrite);
    ~AtomicDir();
    AtomicDir(const AtomicDir&) = delete;
    AtomicDir& operator=(const AtomicDir&) = delete;

    const std::filesystem::path& path() const { return tmp_; }  // write here
    void commit();                                               // rename into place

private:
    std::filesystem::path final_, tmp_;
    bool overwrite_, committed_ = false;
};

}  // namespace autoround
