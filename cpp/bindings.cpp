// The only file that includes pybind11: exposes the C++ core as the private module fastslow._core.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <atomic>
#include <cmath>
#include <chrono>
#include <memory>
#include <optional>
#include <omp.h>

#include "activation.hpp"
#include "hermite.hpp"
#include "model.hpp"
#include "ode/batch.hpp"
#include "ode/dense.hpp"
#include "ode/solve.hpp"
#include "sgd/philox.hpp"
#include "sgd/trainer.hpp"
#include "sgd/ziggurat.hpp"

namespace py = pybind11;
using namespace fastslow;  // NOLINT: this translation unit only
using Array = py::array_t<double, py::array::c_style | py::array::forcecast>;

namespace {

std::span<const double> span_of(const Array& x) { return {x.data(), std::size_t(x.size())}; }

Array make_array(std::vector<double> v) {
  Array out(py::ssize_t(v.size()));
  std::copy(v.begin(), v.end(), out.mutable_data());
  return out;
}

template <class T>
py::array_t<T> make_array_2d(const std::vector<T>& v, std::size_t rows, std::size_t cols) {
  py::array_t<T> out({py::ssize_t(rows), py::ssize_t(cols)});
  std::copy(v.begin(), v.end(), out.mutable_data());
  return out;
}

template <class T>
py::array_t<T> make_vec(const std::vector<T>& v) {
  py::array_t<T> out(py::ssize_t(v.size()));
  std::copy(v.begin(), v.end(), out.mutable_data());
  return out;
}

void check_same_length(const Array& m, const Array& a) {
  if (m.ndim() != 1 || a.ndim() != 1 || m.size() != a.size())
    throw std::invalid_argument("m and a: must be 1-D arrays of equal length");
}

// Cancellation for calls made from threads other than the main one, where Python runs no signal
// handlers (so Ctrl-C cannot reach them): a thread binds a CancelToken (bind_cancel_token); calls
// it then makes stop at the next poll once the token is cancelled, raising KeyboardInterrupt. The
// token belongs to the thread that bound it: nothing is shared with calls made by other threads.
using CancelFlag = std::shared_ptr<std::atomic<bool>>;
thread_local CancelFlag tls_cancel;
struct CancelToken {
  CancelFlag flag = std::make_shared<std::atomic<bool>>(false);
};

// A poll for Ctrl-C: reacquires the GIL at most every 50 ms and runs Python's signal handlers;
// also stops when the calling thread's cancel token (captured at construction) is cancelled.
struct SignalPoll {
  std::chrono::steady_clock::time_point last = std::chrono::steady_clock::now();
  CancelFlag cancel = tls_cancel;
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

ode::Options make_options(double rtol, double atol, long max_steps, double first_step, double max_step,
                          double half_fraction, bool dense, double fixed_step = 0.0) {
  return ode::Options{.rtol = rtol,
                      .atol = atol,
                      .max_steps = max_steps,
                      .first_step = first_step,
                      .max_step = max_step,
                      .fixed_step = fixed_step,
                      .half_fraction = half_fraction,
                      .store_dense = dense};
}

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

sgd::Function make_function(const py::dict& spec, const char* field) {
  const std::string f(field);
  const auto get = [&](const char* key) -> py::object {
    if (!spec.contains(key)) throw std::invalid_argument(f + ": the spec needs the key '" + key + "'");
    return spec[key];
  };
  const py::object kind_obj = get("kind");
  if (!py::isinstance<py::str>(kind_obj)) throw std::invalid_argument(f + ": kind must be 'named' or 'hermite'");
  const std::string kind = kind_obj.cast<std::string>();
  if (kind == "named") {
    const py::object name = get("name"), offset = spec.contains("offset") ? spec["offset"] : py::float_(0.0);
    if (!py::isinstance<py::str>(name)) throw std::invalid_argument(f + ": name must be a string");
    double off;
    try {
      off = offset.cast<double>();
    } catch (const py::cast_error&) {
      throw std::invalid_argument(f + ": offset must be a real number");
    }
    if (!std::isfinite(off)) throw std::invalid_argument(f + ": offset must be finite");
    return sgd::Function::named(name.cast<std::string>(), off);
  }
  if (kind == "hermite") {
    Array coef;
    try {
      coef = py::cast<Array>(get("coefficients"));
    } catch (const py::error_already_set&) {
      throw std::invalid_argument(f + ": coefficients must be an array of real numbers");
    } catch (const py::cast_error&) {
      throw std::invalid_argument(f + ": coefficients must be an array of real numbers");
    }
    if (coef.ndim() != 1 || coef.size() == 0) throw std::invalid_argument(f + ": coefficients must be a non-empty 1-D array");
    for (py::ssize_t i = 0; i < coef.size(); ++i)
      if (!std::isfinite(coef.data()[i])) throw std::invalid_argument(f + ": coefficients must be finite");
    return sgd::Function::hermite(std::vector<double>(coef.data(), coef.data() + coef.size()), field);
  }
  throw std::invalid_argument(f + ": kind must be 'named' or 'hermite'");
}

template <class T>
void register_trainer(py::module_& mod, const char* name) {
  using Tr = sgd::Trainer<T>;
  using TArray = py::array_t<T, py::array::c_style | py::array::forcecast>;
  const auto run = [](Tr& tr, long k) {
    if (k < 0) throw std::invalid_argument("steps: must be >= 0");
    long done;
    {
      py::gil_scoped_release release;
      SignalPoll poll;
      done = tr.run(k, [&]() { return poll(); });
    }
    if (PyErr_Occurred()) throw py::error_already_set();
    return done;
  };
  py::class_<Tr>(mod, name)
      .def(py::init([](int d, int n, int batch, double dt, double lr_w, double lr_a, double noise, std::uint64_t seed,
                       double a0, double m0, int threads, const py::dict& act, const py::dict& tgt) {
             const sgd::Config c{.d = d, .n = n, .batch = batch, .dt = dt, .lr_w = lr_w, .lr_a = lr_a, .noise = noise,
                                 .seed = seed, .a0 = a0, .m0 = m0, .threads = threads};
             return new Tr(c, make_function(act, "activation"), make_function(tgt, "target"));
           }),
           py::arg("d"), py::arg("n"), py::arg("batch"), py::arg("dt"), py::arg("lr_w"), py::arg("lr_a"),
           py::arg("noise"), py::arg("seed"), py::arg("a0"), py::arg("m0"), py::arg("threads"), py::arg("activation"),
           py::arg("target"))
      .def("run", run, py::arg("steps"),
           "Run `steps` SGD steps (GIL released; Ctrl-C raises KeyboardInterrupt between steps).")
      .def("step", run, py::arg("steps") = 1, "Alias of run(steps): `steps` SGD steps (default one).")
      .def(
          "step_with_batch",
          [](Tr& tr, const TArray& X, const TArray& xi) {
            const auto& c = tr.config();
            if (X.ndim() != 2 || X.shape(0) != c.batch || X.shape(1) != c.d)
              throw std::invalid_argument("X: must have shape (batch, d)");
            if (xi.ndim() != 1 || xi.shape(0) != c.batch) throw std::invalid_argument("xi: must have shape (batch,)");
            tr.step_with_batch(X.data(), xi.data());
          },
          py::arg("X"), py::arg("xi"), "One step on a given batch and label noise (for tests).")
      .def("order_parameters",
           [](const Tr& tr) {
             const auto o = tr.order_parameters();
             py::dict d;
             d["m_mean"] = o.m_mean;
             d["m_std"] = o.m_std;
             d["a_mean"] = o.a_mean;
             d["a_std"] = o.a_std;
             return d;
           })
      .def("alignments", [](const Tr& tr) { return make_array(tr.alignments()); })
      .def(
          "population_loss",
          [](const Tr& tr, const Array& s, const Array& c, double second_moment, double target_tail) {
            std::vector<double> sv(s.data(), s.data() + s.size()), cv(c.data(), c.data() + c.size());
            py::gil_scoped_release release;
            return tr.population_loss(sv, cv, second_moment, target_tail);
          },
          py::arg("s"), py::arg("c"), py::arg("second_moment"), py::arg("target_tail"))
      .def_property_readonly("step_count", &Tr::step_count)
      .def(
          "set_step_count", [](Tr& tr, std::uint64_t s) { tr.set_step_count(s); }, py::arg("step"),
          "Set the step counter (when restoring a checkpoint: the random streams are keyed by it).")
      .def("_set_blocks", &Tr::set_blocks, py::arg("rows"), py::arg("neurons"),
           "For benchmarks only: the number of row and neuron blocks of the BLAS calls (0 = default).")
      .def_property_readonly("_blocks", &Tr::blocks, "The number of row and neuron blocks of a step's BLAS calls.")
      .def_property_readonly("batch_loss", &Tr::last_batch_loss)
      .def_property_readonly("W",
                             [](py::object self) {
                               Tr& tr = self.cast<Tr&>();
                               return py::array_t<T>({tr.config().n, tr.config().d}, tr.W(), self);
                             })
      .def_property_readonly("a",
                             [](py::object self) {
                               Tr& tr = self.cast<Tr&>();
                               return py::array_t<T>({tr.config().n}, tr.a(), self);
                             })
      .def_property_readonly("theta", [](py::object self) {
        Tr& tr = self.cast<Tr&>();
        return py::array_t<T>({tr.config().d}, tr.theta(), self);
      });
}

}  // namespace

PYBIND11_MODULE(_core, mod) {
  mod.doc() = "fastslow C++ core (private): Hermite series, the limit model, the stiff integrator.";
  blas::ensure_single_threaded();

  // ---- cancellation from other threads ----------------------------------------------------
  py::class_<CancelToken>(mod, "CancelToken",
                          "A flag that stops the long calls of the threads it is bound to (bind_cancel_token).")
      .def(py::init<>())
      .def("cancel", [](CancelToken& t) { t.flag->store(true); }, "Stop the bound threads' calls at their next poll.")
      .def_property_readonly("cancelled", [](const CancelToken& t) { return t.flag->load(); });
  mod.def(
      "bind_cancel_token",
      [](const CancelToken* t) { tls_cancel = t ? t->flag : CancelFlag{}; },
      py::arg("token").none(true),
      "Bind a CancelToken to the calling thread (None unbinds): its later long calls (SGD runs, ODE "
      "solves) raise KeyboardInterrupt within 50 ms once the token is cancelled.");

  // ---- Hermite series -------------------------------------------------------------------
  mod.def(
      "gauss_hermite",
      [](int N) {
        auto q = hermite::gauss_hermite(N);
        return py::make_tuple(make_array(q.nodes), make_array(q.weights));
      },
      py::arg("n"), "N-point Gauss-Hermite rule for E[f(z)], z ~ N(0,1): (nodes, probability weights).");
  mod.def(
      "hermite_values",
      [](const Array& x, int K) {
        if (K < 0) throw std::invalid_argument("K: must be >= 0");
        Array out({py::ssize_t(x.size()), py::ssize_t(K + 1)});
        for (py::ssize_t i = 0; i < x.size(); ++i) hermite::values(x.data()[i], K, out.mutable_data() + i * (K + 1));
        return out;
      },
      py::arg("x"), py::arg("K"), "h_0..h_K at the points x: array (len(x), K+1).");
  mod.def(
      "hermite_project",
      [](const Array& values, const Array& nodes, const Array& weights, int K) {
        return make_array(hermite::project(span_of(values), span_of(nodes), span_of(weights), K));
      },
      py::arg("values"), py::arg("nodes"), py::arg("weights"), py::arg("K"),
      "Hermite coefficients c_k = sum_i w_i f(x_i) h_k(x_i), k = 0..K.");

  // ---- activations ----------------------------------------------------------------------
  mod.def("activation_names", []() {
    std::vector<std::string> v(std::begin(activation_names), std::end(activation_names));
    return v;
  });
  mod.def(
      "activation",
      [](const std::string& name, const Array& z, bool derivative) {
        const Activation act = activation_from_name(name);
        Array out(z.size());
        for (py::ssize_t i = 0; i < z.size(); ++i)
          out.mutable_data()[i] = derivative ? activation_derivative(act, z.data()[i]) : activation_value(act, z.data()[i]);
        return out;
      },
      py::arg("name"), py::arg("z"), py::arg("derivative") = false, "sigma(z) or sigma'(z) of a named activation.");
  mod.def(
      "closed_form_coefficients",
      [](const std::string& name, int K) -> py::object {
        if (K < 0) throw std::invalid_argument("K: must be >= 0");
        auto s = closed_form_coefficients(activation_from_name(name), K);
        if (!s) return py::none();
        return make_array(*s);
      },
      py::arg("name"), py::arg("K"));
  mod.def(
      "closed_form_second_moment",
      [](const std::string& name) -> py::object {
        auto v = closed_form_second_moment(activation_from_name(name));
        if (!v) return py::none();
        return py::float_(*v);
      },
      py::arg("name"));

  // ---- the limit model --------------------------------------------------------------------
  py::class_<LimitModel>(mod, "LimitModel")
      .def(py::init([](const Array& s, const Array& c, double lr_w, double lr_a, double extra) {
             return LimitModel(std::vector<double>(s.data(), s.data() + s.size()),
                               std::vector<double>(c.data(), c.data() + c.size()), lr_w, lr_a, extra);
           }),
           py::arg("s"), py::arg("c"), py::arg("lr_w"), py::arg("lr_a"), py::arg("extra_loss") = 0.0)
      .def_property_readonly("lr_w", &LimitModel::lr_w)
      .def_property_readonly("lr_a", &LimitModel::lr_a)
      .def_property_readonly("s", [](const LimitModel& m) { return make_array(m.s()); })
      .def_property_readonly("c", [](const LimitModel& m) { return make_array(m.c()); })
      .def(
          "derivs",
          [](const LimitModel& mdl, const Array& m, const Array& a) {
            check_same_length(m, a);
            Array out({py::ssize_t(6), m.size()});
            double* o = out.mutable_data();
            const py::ssize_t n = m.size();
            for (py::ssize_t i = 0; i < n; ++i) {
              const auto d = mdl.derivs(m.data()[i], a.data()[i]);
              o[i] = d.L;
              o[n + i] = d.Lm;
              o[2 * n + i] = d.La;
              o[3 * n + i] = d.Lmm;
              o[4 * n + i] = d.Lma;
              o[5 * n + i] = d.Laa;
            }
            return out;
          },
          py::arg("m"), py::arg("a"), "Rows L, dL/dm, dL/da, d2L/dm2, d2L/dmda, d2L/da2 at each (m, a).")
      .def(
          "series",
          [](const LimitModel& mdl, const Array& m) {
            if (m.ndim() != 1) throw std::invalid_argument("m: must be a 1-D array");
            const py::ssize_t n = m.size();
            Array out({py::ssize_t(6), n});
            double* o = out.mutable_data();
            for (py::ssize_t i = 0; i < n; ++i) {
              const double mi = m.data()[i];
              if (!(std::isfinite(mi) && std::abs(mi) <= 1.0))
                throw std::invalid_argument("m: every entry must be finite with |m| <= 1");
              double r[6];
              mdl.series(mi, r);
              for (int k = 0; k < 6; ++k) o[k * n + i] = r[k];
            }
            return out;
          },
          py::arg("m"), "Rows A, A', A'', B, B', B'' at each m (L = a^2 A / 2 - a B + C0).")
      .def(
          "rhs_jac",
          [](const LimitModel& mdl, const Array& v, const Array& a) {
            check_same_length(v, a);
            Array out({v.size(), py::ssize_t(6)});
            double* o = out.mutable_data();
            for (py::ssize_t i = 0; i < v.size(); ++i) {
              const double y[2] = {v.data()[i], a.data()[i]};
              mdl.rhs_jac(y, o + 6 * i, o + 6 * i + 2);
            }
            return out;
          },
          py::arg("v"), py::arg("a"), "Rows (dv/dt, da/dt, J00, J01, J10, J11) in y = (v = artanh m, a).");

  // ---- the integrator -----------------------------------------------------------------------
  mod.def(
      "solve_ode",
      [](const LimitModel& mdl, double m0, double a0, const Array& t_eval, double rtol, double atol, long max_steps,
         double first_step, double max_step, double half_fraction, bool dense, double fixed_step) {
        const auto opt = make_options(rtol, atol, max_steps, first_step, max_step, half_fraction, dense, fixed_step);
        std::vector<double> te(t_eval.data(), t_eval.data() + t_eval.size());
        ode::Solution s;
        {
          py::gil_scoped_release release;
          SignalPoll poll;
          s = ode::solve(mdl, m0, a0, te, opt, [&]() { return poll(); });
        }
        if (PyErr_Occurred()) throw py::error_already_set();
        py::dict d;
        d["v"] = make_array(s.v);
        d["m"] = make_array(s.m);
        d["a"] = make_array(s.a);
        d["loss"] = make_array(s.loss);
        d["status"] = s.status;
        d["message"] = s.message;
        d["nfev"] = s.stats.nfev;
        d["njev"] = s.stats.njev;
        d["nlu"] = s.stats.nlu;
        d["nsteps"] = s.stats.nsteps;
        d["nrejected"] = s.stats.nrejected;
        d["y_end"] = py::make_tuple(s.y_end[0], s.y_end[1]);
        d["t_reached"] = s.t_reached;
        d["t_peak"] = s.t_peak;
        d["m_peak"] = s.m_peak;
        d["t_half"] = s.t_half;
        if (dense) d["dense"] = dense_to_array(s.dense);
        return d;
      },
      py::arg("model"), py::arg("m0"), py::arg("a0"), py::arg("t_eval"), py::arg("rtol"), py::arg("atol"),
      py::arg("max_steps"), py::arg("first_step"), py::arg("max_step"), py::arg("half_fraction"), py::arg("dense"),
      py::arg("fixed_step") = 0.0);

  mod.def(
      "solve_ode_batch",
      [](const std::vector<const LimitModel*>& models, const Array& m0, const Array& a0, const Array& t_eval,
         double rtol, double atol, long max_steps, double first_step, double max_step, double half_fraction,
         int threads) {
        if (models.empty()) throw std::invalid_argument("models: at least one model is required");
        for (auto* p : models)
          if (!p) throw std::invalid_argument("models: None is not a model");
        const auto opt = make_options(rtol, atol, max_steps, first_step, max_step, half_fraction, false);
        std::vector<double> te(t_eval.data(), t_eval.data() + t_eval.size());
        std::vector<double> vm(m0.data(), m0.data() + m0.size()), va(a0.data(), a0.data() + a0.size());
        ode::BatchResult r;
        {
          py::gil_scoped_release release;
          SignalPoll poll;
          r = ode::solve_batch(models, vm, va, te, opt, threads, [&]() { return poll(); });
        }
        if (PyErr_Occurred()) throw py::error_already_set();
        py::dict d;
        d["m"] = make_array_2d(r.m, r.n, r.ne);
        d["a"] = make_array_2d(r.a, r.n, r.ne);
        d["loss"] = make_array_2d(r.loss, r.n, r.ne);
        d["status"] = make_vec(r.status);
        d["message"] = r.message;
        d["nfev"] = make_vec(r.nfev);
        d["njev"] = make_vec(r.njev);
        d["nlu"] = make_vec(r.nlu);
        d["nsteps"] = make_vec(r.nsteps);
        d["nrejected"] = make_vec(r.nrejected);
        d["t_peak"] = make_vec(r.t_peak);
        d["m_peak"] = make_vec(r.m_peak);
        d["t_half"] = make_vec(r.t_half);
        return d;
      },
      py::arg("models"), py::arg("m0"), py::arg("a0"), py::arg("t_eval"), py::arg("rtol"), py::arg("atol"),
      py::arg("max_steps"), py::arg("first_step"), py::arg("max_step"), py::arg("half_fraction"),
      py::arg("threads"));

  mod.def(
      "dense_evaluate",
      [](const Array& segs, const Array& t) {
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
        Array out({t.size(), py::ssize_t(2)});
        ode::dense_evaluate(sv, span_of(t), out.mutable_data());
        return out;
      },
      py::arg("segments"), py::arg("t"), "Collocation dense output at times t: array (len(t), 2) of (v, a).");

  mod.def("num_procs", []() { return omp_get_num_procs(); });

  // ---- the SGD simulator --------------------------------------------------------------------
  register_trainer<float>(mod, "SGDTrainer32");
  register_trainer<double>(mod, "SGDTrainer64");
  mod.def(
      "philox4x32",
      [](std::array<std::uint32_t, 4> ctr, std::array<std::uint32_t, 2> key) { return rng::philox4x32(ctr, key); },
      py::arg("counter"), py::arg("key"), "Philox4x32-10 block (for known-answer tests).");
  mod.def(
      "normal_row",
      [](std::uint64_t seed, int stream, std::uint64_t step, std::uint64_t row, int length, bool precise) {
        if (stream < 0 || stream > 3) throw std::invalid_argument("stream: must be in 0..3");
        if (length < 0) throw std::invalid_argument("length: must be >= 0");
        std::vector<double> out(static_cast<std::size_t>(length));
        rng::normal_row(seed, rng::Stream(stream), step, row, out.data(), out.size(), precise);
        return make_array(out);
      },
      py::arg("seed"), py::arg("stream"), py::arg("step"), py::arg("row"), py::arg("length"), py::arg("precise"),
      "Box-Muller standard normals of one row of a stream (the float64 simulator's data).");
  mod.def(
      "tanh_f32",
      [](py::array_t<float, py::array::c_style | py::array::forcecast> x) {
        py::array_t<float> v(x.size()), dv(x.size());
        std::copy(x.data(), x.data() + x.size(), v.mutable_data());
        sgd::tanh_row_f32(v.mutable_data(), dv.mutable_data(), int(x.size()), 0.0f);
        return py::make_tuple(v, dv);
      },
      py::arg("x"), "The float32 simulator's tanh and its derivative (for accuracy tests).");
  mod.def(
      "ziggurat_row",
      [](std::uint64_t seed, int stream, std::uint64_t step, std::uint64_t row, int length, bool scalar,
         bool float32) -> py::array {
        if (stream < 0 || stream > 3) throw std::invalid_argument("stream: must be in 0..3");
        if (length < 0) throw std::invalid_argument("length: must be >= 0");
        const std::size_t n = static_cast<std::size_t>(length);
        auto fill = [&](auto* out) {
          if (scalar)
            rng::ziggurat_row_scalar(seed, rng::Stream(stream), step, row, out, n);
          else
            rng::ziggurat_row(seed, rng::Stream(stream), step, row, out, n);
        };
        if (float32) {
          std::vector<float> out(n);
          fill(out.data());
          return make_vec(out);
        }
        std::vector<double> out(n);
        fill(out.data());
        return make_array(out);
      },
      py::arg("seed"), py::arg("stream"), py::arg("step"), py::arg("row"), py::arg("length"),
      py::arg("scalar") = false, py::arg("float32") = false,
      "Ziggurat standard normals of one row of a stream (the float32 simulator's data); `scalar` "
      "uses the one-word-at-a-time definition instead of the AVX2 path (the same numbers).");
}
