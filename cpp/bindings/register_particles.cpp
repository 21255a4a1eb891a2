// fastslow._core.particles: the mean-field particle system and its Radau IIA (5) integrator
// (structured Newton solves). Results cross as bound classes whose arrays are views, not copies.
#include <limits>
#include <string>

#include "../particles/batch.hpp"
#include "../particles/solve.hpp"
#include "../particles/system.hpp"
#include "common.hpp"

namespace fastslow::bindings {

namespace {
using particles::ParticleSystem;

std::vector<double> to_vector(const Array& x) { return std::vector<double>(x.data(), x.data() + x.size()); }

void check_state(const ParticleSystem& sys, const Array& y) {
  if (std::size_t(y.size()) != 2 * sys.size())
    throw std::invalid_argument("y: must hold 2 N = " + std::to_string(2 * sys.size()) + " values (v_i, a_i)");
}

template <class T>
auto sol_view(std::vector<T> particles::Solution::*field, bool per_particle) {
  return [field, per_particle](py::object self) {
    const auto& s = self.cast<const particles::Solution&>();
    return per_particle ? view_of(s.*field, self, s.N, s.ne) : view_of(s.*field, self);
  };
}

template <class T>
auto batch_view(std::vector<T> particles::BatchResult::*field, int kind) {
  return [field, kind](py::object self) -> py::array {
    const auto& r = self.cast<const particles::BatchResult&>();
    const auto& v = r.*field;
    if (kind == 2)
      return py::array_t<T>({py::ssize_t(r.n), py::ssize_t(r.N), py::ssize_t(r.ne)}, v.data(), self);
    if (kind == 1) return view_of(v, self, r.n, r.ne);
    return view_of(v, self);
  };
}
}  // namespace

void register_particles(py::module_& m) {
  py::class_<ParticleSystem>(m, "System", "N particles of the mean-field limit with their weights.")
      .def(py::init([](const LimitModel& model, const Array& weights) {
             return new ParticleSystem(model, to_vector(weights));
           }),
           py::arg("model"), py::arg("weights"))
      .def_property_readonly("size", &ParticleSystem::size)
      .def_property_readonly("rank", &ParticleSystem::rank)
      .def_property_readonly("orders", &ParticleSystem::orders)
      .def_property_readonly("weights", [](const ParticleSystem& s) { return copy_of(s.weights()); })
      .def(
          "residuals",
          [](const ParticleSystem& s, const Array& y) {
            check_state(s, y);
            std::vector<double> R(std::size_t(s.rank()));
            particles::Scratch sc;
            s.residuals(y.data(), R.data(), sc);
            return copy_of(R);
          },
          py::arg("y"), "R_k = s_k M_k - c_k at the orders with s_k != 0.")
      .def(
          "loss",
          [](const ParticleSystem& s, const Array& y) {
            check_state(s, y);
            std::vector<double> R(std::size_t(s.rank()));
            particles::Scratch sc;
            s.residuals(y.data(), R.data(), sc);
            return s.loss(R.data());
          },
          py::arg("y"))
      .def(
          "rhs",
          [](const ParticleSystem& s, const Array& y) {
            check_state(s, y);
            std::vector<double> f(2 * s.size()), R(std::size_t(s.rank()));
            particles::Scratch sc;
            s.rhs(y.data(), f.data(), R.data(), sc);
            return copy_of(f);
          },
          py::arg("y"), "f(y) in y = (v_0, a_0, v_1, a_1, ...).")
      .def(
          "jacobian",
          [](const ParticleSystem& s, const Array& y) {
            check_state(s, y);
            const std::size_t N = s.size(), r = std::size_t(s.rank());
            std::vector<double> f(2 * N), R(r);
            Array D({py::ssize_t(N), py::ssize_t(2), py::ssize_t(2)});
            Array U({py::ssize_t(2 * N), py::ssize_t(r)}), V({py::ssize_t(2 * N), py::ssize_t(r)});
            particles::Scratch sc;
            s.rhs(y.data(), f.data(), R.data(), sc, D.mutable_data(), U.mutable_data(), V.mutable_data());
            return py::make_tuple(D, U, V);
          },
          py::arg("y"), "The Jacobian's parts (D, U, V): J = blockdiag(D) + U V^T.");

  py::class_<particles::Solution>(m, "Solution", "One particle system: values at t_eval, events, statistics.")
      .def_readonly("N", &particles::Solution::N)
      .def_property_readonly("v", sol_view(&particles::Solution::v, true))
      .def_property_readonly("a", sol_view(&particles::Solution::a, true))
      .def_property_readonly("m_mean", sol_view(&particles::Solution::m_mean, false))
      .def_property_readonly("a_mean", sol_view(&particles::Solution::a_mean, false))
      .def_property_readonly("loss", sol_view(&particles::Solution::loss, false))
      .def_readonly("status", &particles::Solution::status)
      .def_readonly("message", &particles::Solution::message)
      .def_property_readonly("nfev", [](const particles::Solution& s) { return s.stats.nfev; })
      .def_property_readonly("njev", [](const particles::Solution& s) { return s.stats.njev; })
      .def_property_readonly("nlu", [](const particles::Solution& s) { return s.stats.nlu; })
      .def_property_readonly("nsteps", [](const particles::Solution& s) { return s.stats.nsteps; })
      .def_property_readonly("nrejected", [](const particles::Solution& s) { return s.stats.nrejected; })
      .def_readonly("t_reached", &particles::Solution::t_reached)
      .def_readonly("t_peak", &particles::Solution::t_peak)
      .def_readonly("m_peak", &particles::Solution::m_peak)
      .def_readonly("t_half", &particles::Solution::t_half)
      .def_property_readonly(
          "dense",
          [](py::object self) -> py::object {
            const auto& s = self.cast<const particles::Solution&>();
            const py::ssize_t K = py::ssize_t(s.dense_t0.size()), dim = py::ssize_t(2 * s.N);
            if (K == 0) return py::none();
            return py::make_tuple(view_of(s.dense_t0, self), view_of(s.dense_h, self),
                                  py::array_t<double>({K, dim}, s.dense_y0.data(), self),
                                  py::array_t<double>({K, dim, py::ssize_t(3)}, s.dense_Q.data(), self));
          },
          "The accepted steps (t0, h, y0 (K, 2N), Q (K, 2N, 3)), or None without dense output.");

  py::class_<particles::BatchResult>(m, "BatchResult", "Many particle systems: (n, N, T) per particle, (n, T) means.")
      .def_readonly("n", &particles::BatchResult::n)
      .def_readonly("N", &particles::BatchResult::N)
      .def_property_readonly("v", batch_view(&particles::BatchResult::v, 2))
      .def_property_readonly("a", batch_view(&particles::BatchResult::a, 2))
      .def_property_readonly("m_mean", batch_view(&particles::BatchResult::m_mean, 1))
      .def_property_readonly("a_mean", batch_view(&particles::BatchResult::a_mean, 1))
      .def_property_readonly("loss", batch_view(&particles::BatchResult::loss, 1))
      .def_property_readonly("status", batch_view(&particles::BatchResult::status, 0))
      .def_readonly("message", &particles::BatchResult::message)
      .def_property_readonly("nfev", batch_view(&particles::BatchResult::nfev, 0))
      .def_property_readonly("njev", batch_view(&particles::BatchResult::njev, 0))
      .def_property_readonly("nlu", batch_view(&particles::BatchResult::nlu, 0))
      .def_property_readonly("nsteps", batch_view(&particles::BatchResult::nsteps, 0))
      .def_property_readonly("nrejected", batch_view(&particles::BatchResult::nrejected, 0))
      .def_property_readonly("t_peak", batch_view(&particles::BatchResult::t_peak, 0))
      .def_property_readonly("m_peak", batch_view(&particles::BatchResult::m_peak, 0))
      .def_property_readonly("t_half", batch_view(&particles::BatchResult::t_half, 0))
      .def_readonly("interrupted", &particles::BatchResult::interrupted);

  m.def("working_bytes", &particles::working_bytes, py::arg("N"), py::arg("rank"),
        "Bytes one integration holds besides its result (the structured solvers and the state).");

  m.def(
      "solve",
      [](const ParticleSystem& sys, const Array& y0, const Array& t_eval, const ode::Options& opt) {
        std::vector<double> y(y0.data(), y0.data() + y0.size()), te = to_vector(t_eval);
        particles::Solution s;
        {
          py::gil_scoped_release release;
          SignalPoll poll;
          s = particles::solve(sys, y, te, opt, [&]() { return poll(); });
        }
        if (PyErr_Occurred()) throw py::error_already_set();
        return s;
      },
      py::arg("system"), py::arg("y0"), py::arg("t_eval"), py::arg("options"),
      "Integrate one particle system from y0 = (v_0, a_0, v_1, a_1, ...) (GIL released; Ctrl-C raises "
      "KeyboardInterrupt).");

  m.def(
      "solve_batch",
      [](const std::vector<const LimitModel*>& models, const Array& weights, const Array& y0, std::size_t N,
         const Array& t_eval, const ode::Options& opt, int threads) {
        if (models.empty()) throw std::invalid_argument("models: at least one model is required");
        for (auto* p : models)
          if (!p) throw std::invalid_argument("models: None is not a model");
        std::vector<double> w = to_vector(weights), y = to_vector(y0), te = to_vector(t_eval);
        particles::BatchResult r;
        {
          py::gil_scoped_release release;
          SignalPoll poll;
          r = particles::solve_batch(models, w, y, N, te, opt, threads, [&]() { return poll(); });
        }
        if (PyErr_Occurred()) throw py::error_already_set();
        return r;
      },
      py::arg("models"), py::arg("weights"), py::arg("y0"), py::arg("N"), py::arg("t_eval"), py::arg("options"),
      py::arg("threads"),
      "Integrate many particle systems on OpenMP threads (GIL released; results independent of the thread count).");
}

}  // namespace fastslow::bindings
