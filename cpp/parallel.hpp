// An exception must not leave an OpenMP region (the runtime calls std::terminate, and the process
// aborts): every parallel region of the core runs its work through an ExceptionGuard, which keeps
// the first exception any thread threw (std::bad_alloc, an invalid_argument, ...), lets the other
// threads skip their remaining work, and rethrows it on the calling thread after the region.
#pragma once
#include <atomic>
#include <exception>
#include <mutex>

namespace fastslow {

class ExceptionGuard {
 public:
  // Run f, catching whatever it throws (the first exception is kept).
  template <class F>
  void run(F&& f) noexcept {
    try {
      f();
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!error_) error_ = std::current_exception();
      failed_.store(true, std::memory_order_relaxed);
    }
  }
  // Some thread threw: the others may skip their remaining work.
  bool failed() const { return failed_.load(std::memory_order_relaxed); }
  // After the region: rethrow the kept exception, if any.
  void rethrow() const {
    if (error_) std::rethrow_exception(error_);
  }

 private:
  std::mutex mutex_;
  std::exception_ptr error_;
  std::atomic<bool> failed_{false};
};

}  // namespace fastslow
