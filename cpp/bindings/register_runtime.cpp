// fastslow._core.runtime: cancellation tokens and the processor count.
#include <omp.h>

#include "common.hpp"

namespace fastslow::bindings {

CancelFlag& thread_cancel_flag() {
  thread_local CancelFlag flag;
  return flag;
}

namespace {
struct CancelToken {
  CancelFlag flag = std::make_shared<std::atomic<bool>>(false);
};
}  // namespace

void register_runtime(py::module_& m) {
  py::class_<CancelToken>(m, "CancelToken",
                          "A flag that stops the long calls of the threads it is bound to (bind_cancel_token).")
      .def(py::init<>())
      .def("cancel", [](CancelToken& t) { t.flag->store(true); }, "Stop the bound threads' calls at their next poll.")
      .def_property_readonly("cancelled", [](const CancelToken& t) { return t.flag->load(); });
  m.def(
      "bind_cancel_token",
      [](const CancelToken* t) { thread_cancel_flag() = t ? t->flag : CancelFlag{}; }, py::arg("token").none(true),
      "Bind a CancelToken to the calling thread (None unbinds): its later long calls (SGD runs, ODE "
      "solves) raise KeyboardInterrupt within 50 ms once the token is cancelled.");
  m.def("num_procs", []() { return omp_get_num_procs(); }, "The processors OpenMP sees.");
}

}  // namespace fastslow::bindings
