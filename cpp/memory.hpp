// How much memory this process can still allocate, for checks made before allocating (a clear
// error instead of std::bad_alloc or the OOM killer): the least of the kernel's MemAvailable, the
// headroom under the address-space limit (RLIMIT_AS, `ulimit -v`) and the headroom under the
// cgroup v2 memory limit, which is what a cluster job runs under. fastslow._runtime applies the
// same rule in Python; this is the core's own backstop.
#pragma once
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

namespace fastslow {

namespace detail {
inline double meminfo_field(const char* path, const char* key) {
  double v = -1.0;
  if (std::FILE* f = std::fopen(path, "r")) {
    char line[256];
    const std::size_t n = std::strlen(key);
    while (std::fgets(line, sizeof line, f))
      if (std::strncmp(line, key, n) == 0) v = 1024.0 * std::strtod(line + n, nullptr);
    std::fclose(f);
  }
  return v;
}

inline double read_number(const std::string& path) {
  std::ifstream in(path);
  std::string s;
  if (!(in >> s) || s == "max") return -1.0;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  return end && *end == '\0' ? v : -1.0;
}
}  // namespace detail

// Bytes still available (negative when nothing is known).
inline double available_memory() {
  double best = detail::meminfo_field("/proc/meminfo", "MemAvailable:");
  auto take = [&](double v) {
    if (v >= 0 && (best < 0 || v < best)) best = v;
  };
  rlimit lim{};
  if (getrlimit(RLIMIT_AS, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY) {
    const double used = std::max(0.0, detail::meminfo_field("/proc/self/status", "VmSize:"));
    take(std::max(0.0, double(lim.rlim_cur) - used));
  }
  std::ifstream cg("/proc/self/cgroup");
  std::string line;
  while (std::getline(cg, line)) {
    if (line.rfind("0::", 0) != 0) continue;  // cgroup v2
    const std::string dir = "/sys/fs/cgroup" + line.substr(3);
    const double limit = detail::read_number(dir + "/memory.max");
    if (limit > 0) take(std::max(0.0, limit - std::max(0.0, detail::read_number(dir + "/memory.current"))));
  }
  return best;
}

}  // namespace fastslow
