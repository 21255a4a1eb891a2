// fastslow._core.effective: the effective map of the finite network (cpp/effective). The map is a
// bound class built from the Model's coefficients and its activation Function; a trajectory and a
// batch cross back as bound result structs whose arrays are views of the C++ vectors.
#include <cmath>
#include <limits>
#include <memory>
#include <string>

#include "../effective/iterate.hpp"
#include "common.hpp"

namespace fastslow::bindings {

namespace {
namespace ef = fastslow::effective;

template <class T>
auto traj_view(std::vector<T> ef::Trajectory::*field) {
  return [field](py::object self) { return view_of(self.cast<const ef::Trajectory&>().*field, self); };
}

template <class T>
auto batch_view(std::vector<T> ef::BatchResult::*field, bool matrix) {
  return [field, matrix](py::object self) {
    const auto& r = self.cast<const ef::BatchResult&>();
    return matrix ? view_of(r.*field, self, r.n, r.ne) : view_of(r.*field, self);
  };
}

ef::Setting setting(double n, double ratio, const ef::Terms& terms) {
  if (!(n >= 2.0)) throw std::invalid_argument("n: the width must be >= 2 (or infinite), got " + std::to_string(n));
  return ef::Setting{std::isinf(n) ? 0.0 : 1.0 / n, ratio, terms};
}
}  // namespace

void register_effective(py::module_& m) {
  py::class_<ef::Terms>(m, "Terms", "Which terms the effective map keeps (see fastslow.solve_effective).")
      .def(py::init([](bool noise, bool collective, bool feedback) { return ef::Terms{noise, collective, feedback}; }),
           py::kw_only(), py::arg("noise") = true, py::arg("collective") = true, py::arg("feedback") = true)
      .def_readonly("noise", &ef::Terms::noise)
      .def_readonly("collective", &ef::Terms::collective)
      .def_readonly("feedback", &ef::Terms::feedback);

  py::class_<ef::EffectiveMap>(m, "EffectiveMap", "The effective map of one model: series, noise expectations, the step.")
      .def(py::init([](const Array& s, const Array& c, double s_tail, double c_tail, const sgd::Function& act,
                       double lr_w, double lr_a, double noise, int nodes) {
             std::vector<double> sv(s.data(), s.data() + s.size()), cv(c.data(), c.data() + c.size());
             return std::make_unique<ef::EffectiveMap>(ef::Series(sv, cv, s_tail, c_tail), act, lr_w, lr_a, noise,
                                                       nodes);
           }),
           py::kw_only(), py::arg("s"), py::arg("c"), py::arg("s_tail"), py::arg("c_tail"), py::arg("activation"),
           py::arg("lr_w"), py::arg("lr_a"), py::arg("noise"), py::arg("nodes") = 24)
      .def(
          "series",
          [](const ef::EffectiveMap& mp, double x) {
            const auto& S = mp.series();
            return py::make_tuple(S.K(x), S.K1(x), S.K2(x), S.C(x), S.C1(x), S.T(x));
          },
          py::arg("x"), "(K, K1, K2, C, C1, T) at x.")
      .def_property_readonly("second_moment", [](const ef::EffectiveMap& mp) { return mp.series().E_sig2(); })
      .def(
          "noise_terms",
          [](const ef::EffectiveMap& mp, double m, double a, double Q, double n) {
            const auto e = mp.noise()(m, a, Q, std::isinf(n) ? 0.0 : 1.0 / n);
            return py::make_tuple(e.Es, e.Ec);
          },
          py::arg("m"), py::arg("a"), py::arg("Q"), py::arg("n"), "(E_s, E_c) at the state (m, a, Q), width n.")
      .def(
          "step",
          [](const ef::EffectiveMap& mp, double m, double a, double Q, double dt, double ratio, double n,
             const ef::Terms& terms) {
            const ef::State y = mp.step({m, a, Q}, dt, setting(n, ratio, terms));
            return py::make_tuple(y.m, y.a, y.Q);
          },
          py::arg("m"), py::arg("a"), py::arg("Q"), py::arg("dt"), py::arg("ratio"), py::arg("n"), py::arg("terms"),
          "One step (m, a, Q) -> (m', a', Q'); ratio = d / batch.")
      .def(
          "loss",
          [](const ef::EffectiveMap& mp, double m, double a, double Q, double n, const ef::Terms& terms) {
            return mp.loss({m, a, Q}, setting(n, 0.0, terms));
          },
          py::arg("m"), py::arg("a"), py::arg("Q"), py::arg("n"), py::arg("terms"));

  py::class_<ef::Trajectory>(m, "Trajectory", "One iterated trajectory: values at t_eval, optionally every step.")
      .def_property_readonly("m", traj_view(&ef::Trajectory::m))
      .def_property_readonly("a", traj_view(&ef::Trajectory::a))
      .def_property_readonly("loss", traj_view(&ef::Trajectory::loss))
      .def_property_readonly("q_perp", traj_view(&ef::Trajectory::q_perp))
      .def_property_readonly("t_steps", traj_view(&ef::Trajectory::t_steps))
      .def_property_readonly("m_steps", traj_view(&ef::Trajectory::m_steps))
      .def_property_readonly("a_steps", traj_view(&ef::Trajectory::a_steps))
      .def_property_readonly("loss_steps", traj_view(&ef::Trajectory::loss_steps))
      .def_property_readonly("q_steps", traj_view(&ef::Trajectory::q_steps))
      .def_readonly("steps", &ef::Trajectory::steps)
      .def_readonly("t_end", &ef::Trajectory::t_end)
      .def_readonly("status", &ef::Trajectory::status)
      .def_readonly("message", &ef::Trajectory::message);

  py::class_<ef::BatchResult>(m, "BatchResult", "Many settings: (n, len(t_eval)) values and per-setting statistics.")
      .def_readonly("n", &ef::BatchResult::n)
      .def_property_readonly("m", batch_view(&ef::BatchResult::m, true))
      .def_property_readonly("a", batch_view(&ef::BatchResult::a, true))
      .def_property_readonly("loss", batch_view(&ef::BatchResult::loss, true))
      .def_property_readonly("q_perp", batch_view(&ef::BatchResult::q_perp, true))
      .def_property_readonly("steps", batch_view(&ef::BatchResult::steps, false))
      .def_property_readonly("status", batch_view(&ef::BatchResult::status, false))
      .def_readonly("message", &ef::BatchResult::message)
      .def_readonly("interrupted", &ef::BatchResult::interrupted);

  m.def(
      "iterate",
      [](const ef::EffectiveMap& mp, double m0, double a0, double q0, const Array& t_eval, double dt,
         const Array& schedule, double ratio, double n, const ef::Terms& terms, bool store_steps, long max_steps) {
        const ef::Setting s = setting(n, ratio, terms);
        std::vector<double> te(t_eval.data(), t_eval.data() + t_eval.size());
        std::vector<double> sc(schedule.data(), schedule.data() + schedule.size());
        ef::validate(m0, a0, q0, te, dt, sc, s, max_steps);
        ef::Trajectory r;
        {
          py::gil_scoped_release release;
          SignalPoll poll;
          r = ef::iterate(mp, m0, a0, q0, te, dt, sc, s, store_steps, [&]() { return poll(); });
        }
        if (PyErr_Occurred()) throw py::error_already_set();
        return r;
      },
      py::arg("map"), py::arg("m0"), py::arg("a0"), py::arg("q0"), py::arg("t_eval"), py::arg("dt"),
      py::arg("schedule"), py::arg("ratio"), py::arg("n"), py::arg("terms"), py::arg("store_steps"),
      py::arg("max_steps") = 10'000'000L,
      "Iterate the map from (m0, a0, q0) with step dt (or the steps of `schedule`, if not empty); GIL released, "
      "Ctrl-C raises KeyboardInterrupt.");

  m.def(
      "iterate_batch",
      [](const ef::EffectiveMap& mp, const Array& m0, const Array& a0, const Array& dt, const Array& n,
         const Array& ratio, const ef::Terms& terms, const Array& t_eval, int threads, long max_steps) {
        std::vector<double> inv(std::size_t(n.size()));
        for (py::ssize_t i = 0; i < n.size(); ++i) {
          const double ni = n.data()[i];
          if (!(ni >= 2.0)) throw std::invalid_argument("n: every width must be >= 2 (or infinite)");
          inv[std::size_t(i)] = std::isinf(ni) ? 0.0 : 1.0 / ni;
        }
        ef::BatchResult r;
        {
          py::gil_scoped_release release;
          SignalPoll poll;
          r = ef::iterate_batch(mp, span_of(m0), span_of(a0), span_of(dt), inv, span_of(ratio), terms,
                                span_of(t_eval), threads, max_steps, [&]() { return poll(); });
        }
        if (PyErr_Occurred()) throw py::error_already_set();
        return r;
      },
      py::arg("map"), py::arg("m0"), py::arg("a0"), py::arg("dt"), py::arg("n"), py::arg("ratio"), py::arg("terms"),
      py::arg("t_eval"), py::arg("threads"), py::arg("max_steps") = 10'000'000L,
      "Iterate many settings on OpenMP threads (GIL released; results independent of the thread count).");
}

}  // namespace fastslow::bindings
