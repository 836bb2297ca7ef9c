// Runs the store conformance suite against the SQLite backend: once in
// memory, once on a fresh database file per test (removed afterwards), so
// both the shared-connection and the writer-plus-readers paths are covered.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "conformance/store_conformance.h"
#include "store/sqlite/sqlite_store.h"

namespace sked::testing {
namespace {

StoreConformanceParam MemoryParam() {
  return {.name = "memory",
          .open = [] { return store::OpenSqliteStore({.path = ":memory:"}); },
          .cleanup = nullptr};
}

StoreConformanceParam FileParam() {
  // The directory of the current test's database, shared by open and cleanup.
  auto dir = std::make_shared<std::filesystem::path>();
  return {.name = "file",
          .open = [dir]() -> core::StatusOr<std::unique_ptr<core::Store>> {
            std::string tmpl =
                (std::filesystem::temp_directory_path() / "sked-sqlite-XXXXXX")
                    .string();
            if (::mkdtemp(tmpl.data()) == nullptr) {
              return core::InternalError("mkdtemp failed");
            }
            *dir = tmpl;
            // A missing parent directory is created by the store.
            return store::OpenSqliteStore(
                {.path = (*dir / "data" / "sked.db").string()});
          },
          .cleanup =
              [dir] {
                std::error_code ec;
                if (!dir->empty()) std::filesystem::remove_all(*dir, ec);
                dir->clear();
              }};
}

INSTANTIATE_TEST_SUITE_P(Sqlite, StoreConformanceTest,
                         ::testing::Values(MemoryParam(), FileParam()),
                         StoreConformanceParamName);

}  // namespace
}  // namespace sked::testing
