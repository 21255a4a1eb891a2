// What the binding files share: array conversions, the Ctrl-C poll and the per-thread cancel token.
// Only files under cpp/bindings/ include pybind11; the core headers stay free of Python.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <span>
#include <vector>

namespace fastslow::bindings {

namespace py = pybind11;
using Array = py::array_t<double, py::array::c_style | py::array::forcecast>;

inline std::span<const double> span_of(const Array& x) { return {x.data(), std::size_t(x.size())}; }

// A new NumPy array holding a copy of v.
template <class T>
py::array_t<T> copy_of(const std::vector<T>& v) {
  py::array_t<T> out(py::ssize_t(v.size()));
  std::copy(v.begin(), v.end(), out.mutable_data());
  return out;
}

// A NumPy view of v (no copy) whose base is `owner`, the Python object that holds v: the array
// keeps the owner alive. Shape (rows, cols) when cols > 0, else 1-D.
template <class T>
py::array_t<T> view_of(const std::vector<T>& v, py::handle owner, std::size_t rows = 0, std::size_t cols = 0) {
  if (cols > 0) return py::array_t<T>({py::ssize_t(rows), py::ssize_t(cols)}, v.data(), owner);
  return py::array_t<T>({py::ssize_t(v.size())}, v.data(), owner);
}

// Cancellation for calls made from threads other than the main one, where Python runs no signal
// handlers (so Ctrl-C cannot reach them): a thread binds a CancelToken; the long calls it then
// makes stop at their next poll once the token is cancelled, raising KeyboardInterrupt. The token
// belongs to the thread that bound it (defined in register_runtime.cpp).
using CancelFlag = std::shared_ptr<std::atomic<bool>>;
CancelFlag& thread_cancel_flag();

// A poll for Ctrl-C: reacquires the GIL at most every 50 ms and runs Python's signal handlers;
// also stops when the calling thread's cancel token (captured at construction) is cancelled.
struct SignalPoll {
  std::chrono::steady_clock::time_point last = std::chrono::steady_clock::now();
  CancelFlag cancel = thread_cancel_flag();
  bool operator()() {
    const auto now = std::chrono::steady_clock::now();
    if (now - last < std::chrono::milliseconds(50)) return false;
    last = now;
    py::gil_scoped_acquire gil;
    if (cancel && cancel->load()) {
      PyErr_SetString(PyExc_KeyboardInterrupt, "cancelled (the thread's cancel token was set)");
      return true;
    }
    return PyErr_CheckSignals() != 0;
  }
};

// Each concept registers itself into its own submodule of fastslow._core.
void register_runtime(py::module_& m);
void register_hermite(py::module_& m);
void register_model(py::module_& m);
void register_ode(py::module_& m);
void register_sgd(py::module_& m);
void register_effective(py::module_& m);
void register_particles(py::module_& m);
void register_testing(py::module_& m);

}  // namespace fastslow::bindings
