// fastslow._core.ode: the Radau IIA (5) integrator. Results cross the boundary as bound classes
// (Solution, BatchResult) whose array properties are views of the C++ vectors, not copies.
#include <limits>
#include <string>

#include "../ode/batch.hpp"
#include "../ode/dense.hpp"
#include "../ode/solve.hpp"
#include "common.hpp"

namespace fastslow::bindings {

namespace {
Array dense_to_array(const std::vector<ode::Segment>& segs) {
  Array out({py::ssize_t(segs.size()), py::ssize_t(10)});
  double* p = out.mutable_data();
  for (const auto& g : segs) {
    *p++ = g.t0;
    *p++ = g.h;
    *p++ = g.y0[0];
    *p++ = g.y0[1];
    for (int j = 0; j < 2; ++j)
      for (int c = 0; c < 3; ++c) *p++ = g.Q[j][c];
  }
  return out;
}

std::vector<ode::Segment> array_to_dense(const Array& segs) {
  if (segs.ndim() != 2 || segs.shape(1) != 10 || segs.shape(0) < 1)
    throw std::invalid_argument("dense segments: must be an array of shape (K >= 1, 10)");
  std::vector<ode::Segment> sv(std::size_t(segs.shape(0)));
  const double* p = segs.data();
  for (auto& g : sv) {
    g.t0 = *p++;
    g.h = *p++;
    g.y0[0] = *p++;
    g.y0[1] = *p++;
    for (int j = 0; j < 2; ++j)
      for (int c = 0; c < 3; ++c) g.Q[j][c] = *p++;
  }
  return sv;
}

template <class T>
auto view(std::vector<T> ode::Solution::*field) {
  return [field](py::object self) { return view_of(self.cast<const ode::Solution&>().*field, self); };
}

template <class T>
auto batch_view(std::vector<T> ode::BatchResult::*field, bool matrix) {
  return [field, matrix](py::object self) {
    const auto& r = self.cast<const ode::BatchResult&>();
    return matrix ? view_of(r.*field, self, r.n, r.ne) : view_of(r.*field, self);
  };
}
}  // namespace

void register_ode(py::module_& m) {
  py::class_<ode::Options>(m, "Options", "Settings of the integrator (see fastslow.solve_ode).")
      .def(py::init([](double rtol, double atol, long max_steps, double first_step, double max_step, double fixed_step,
                       double half_fraction, bool store_dense) {
             return ode::Options{.rtol = rtol, .atol = atol, .max_steps = max_steps, .first_step = first_step,
                                 .max_step = max_step, .fixed_step = fixed_step, .half_fraction = half_fraction,
                                 .store_dense = store_dense};
           }),
           py::kw_only(), py::arg("rtol") = 1e-8, py::arg("atol") = 1e-10, py::arg("max_steps") = 1'000'000L,
           py::arg("first_step") = 0.0, py::arg("max_step") = std::numeric_limits<double>::infinity(),
           py::arg("fixed_step") = 0.0, py::arg("half_fraction") = 0.5, py::arg("store_dense") = false)
      .def_readwrite("rtol", &ode::Options::rtol)
      .def_readwrite("atol", &ode::Options::atol)
      .def_readwrite("max_steps", &ode::Options::max_steps)
      .def_readwrite("first_step", &ode::Options::first_step)
      .def_readwrite("max_step", &ode::Options::max_step)
      .def_readwrite("fixed_step", &ode::Options::fixed_step)
      .def_readwrite("half_fraction", &ode::Options::half_fraction)
      .def_readwrite("store_dense", &ode::Options::store_dense);

  py::class_<ode::Solution>(m, "Solution", "One trajectory: values at t_eval, events, statistics, dense output.")
      .def_property_readonly("v", view(&ode::Solution::v))
      .def_property_readonly("m", view(&ode::Solution::m))
      .def_property_readonly("a", view(&ode::Solution::a))
      .def_property_readonly("loss", view(&ode::Solution::loss))
      .def_readonly("status", &ode::Solution::status)
      .def_readonly("message", &ode::Solution::message)
      .def_property_readonly("nfev", [](const ode::Solution& s) { return s.stats.nfev; })
      .def_property_readonly("njev", [](const ode::Solution& s) { return s.stats.njev; })
      .def_property_readonly("nlu", [](const ode::Solution& s) { return s.stats.nlu; })
      .def_property_readonly("nsteps", [](const ode::Solution& s) { return s.stats.nsteps; })
      .def_property_readonly("nrejected", [](const ode::Solution& s) { return s.stats.nrejected; })
      .def_readonly("t_reached", &ode::Solution::t_reached)
      .def_readonly("t_peak", &ode::Solution::t_peak)
      .def_readonly("m_peak", &ode::Solution::m_peak)
      .def_readonly("t_half", &ode::Solution::t_half)
      .def_property_readonly("dense", [](const ode::Solution& s) { return dense_to_array(s.dense); },
                             "The accepted steps' collocation polynomials: (K, 10) rows t0, h, v0, a0, Q.");

  py::class_<ode::BatchResult>(m, "BatchResult", "Many trajectories: (n, len(t_eval)) values and per-trajectory statistics.")
      .def_readonly("n", &ode::BatchResult::n)
      .def_property_readonly("m", batch_view(&ode::BatchResult::m, true))
      .def_property_readonly("a", batch_view(&ode::BatchResult::a, true))
      .def_property_readonly("loss", batch_view(&ode::BatchResult::loss, true))
      .def_property_readonly("status", batch_view(&ode::BatchResult::status, false))
      .def_readonly("message", &ode::BatchResult::message)
      .def_property_readonly("nfev", batch_view(&ode::BatchResult::nfev, false))
      .def_property_readonly("njev", batch_view(&ode::BatchResult::njev, false))
      .def_property_readonly("nlu", batch_view(&ode::BatchResult::nlu, false))
      .def_property_readonly("nsteps", batch_view(&ode::BatchResult::nsteps, false))
      .def_property_readonly("nrejected", batch_view(&ode::BatchResult::nrejected, false))
      .def_property_readonly("t_peak", batch_view(&ode::BatchResult::t_peak, false))
      .def_property_readonly("m_peak", batch_view(&ode::BatchResult::m_peak, false))
      .def_property_readonly("t_half", batch_view(&ode::BatchResult::t_half, false))
      .def_readonly("interrupted", &ode::BatchResult::interrupted);

  m.def(
      "solve",
      [](const LimitModel& mdl, double m0, double a0, const Array& t_eval, const ode::Options& opt) {
        std::vector<double> te(t_eval.data(), t_eval.data() + t_eval.size());
        ode::Solution s;
        {
          py::gil_scoped_release release;
          SignalPoll poll;
          s = ode::solve(mdl, m0, a0, te, opt, [&]() { return poll(); });
        }
        if (PyErr_Occurred()) throw py::error_already_set();
        return s;
      },
      py::arg("model"), py::arg("m0"), py::arg("a0"), py::arg("t_eval"), py::arg("options"),
      "Integrate one trajectory (GIL released; Ctrl-C raises KeyboardInterrupt).");

  m.def(
      "solve_batch",
      [](const std::vector<const LimitModel*>& models, const Array& m0, const Array& a0, const Array& t_eval,
         const ode::Options& opt, int threads) {
        if (models.empty()) throw std::invalid_argument("models: at least one model is required");
        for (auto* p : models)
          if (!p) throw std::invalid_argument("models: None is not a model");
        std::vector<double> te(t_eval.data(), t_eval.data() + t_eval.size());
        std::vector<double> vm(m0.data(), m0.data() + m0.size()), va(a0.data(), a0.data() + a0.size());
        ode::BatchResult r;
        {
          py::gil_scoped_release release;
          SignalPoll poll;
          r = ode::solve_batch(models, vm, va, te, opt, threads, [&]() { return poll(); });
        }
        if (PyErr_Occurred()) throw py::error_already_set();
        return r;
      },
      py::arg("models"), py::arg("m0"), py::arg("a0"), py::arg("t_eval"), py::arg("options"), py::arg("threads"),
      "Integrate many trajectories on OpenMP threads (GIL released; results independent of the thread count).");

  m.def(
      "dense_evaluate",
      [](const Array& segs, const Array& t) {
        const auto sv = array_to_dense(segs);
        Array out({t.size(), py::ssize_t(2)});
        ode::dense_evaluate(sv, span_of(t), out.mutable_data());
        return out;
      },
      py::arg("segments"), py::arg("t"), "Collocation dense output at times t: array (len(t), 2) of (v, a).");
}

}  // namespace fastslow::bindings
