// fastslow._core.sgd: the SGD simulator. The activation and target cross as bound Function objects,
// the settings as a TrainerConfig, the order parameters as an OrderParameters struct.
#include <string>

#include "../sgd/functions.hpp"
#include "../sgd/trainer.hpp"
#include "common.hpp"

namespace fastslow::bindings {

namespace {
template <class T>
void register_trainer(py::module_& m, const char* name) {
  using Tr = sgd::Trainer<T>;
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
  py::class_<Tr>(m, name, "The finite network and its SGD step (see fastslow.SGDTrainer).")
      .def(py::init([](const sgd::Config& c, const sgd::Function& act, const sgd::Function& tgt) {
             return new Tr(c, act, tgt);
           }),
           py::arg("config"), py::arg("activation"), py::arg("target"))
      .def("run", run, py::arg("steps"),
           "Run `steps` SGD steps (GIL released; Ctrl-C raises KeyboardInterrupt between steps).")
      .def(
          "run_schedule",
          [](Tr& tr, const Array& dts) {
            std::vector<double> v(dts.data(), dts.data() + dts.size());
            long done;
            {
              py::gil_scoped_release release;
              SignalPoll poll;
              done = tr.run_schedule(v, [&]() { return poll(); });
            }
            if (PyErr_Occurred()) throw py::error_already_set();
            return done;
          },
          py::arg("dts"), "One SGD step per entry of `dts`, with that step (GIL released; Ctrl-C between steps).")
      .def("set_dt", &Tr::set_dt, py::arg("dt"), "The step of the following steps.")
      .def("order_parameters", &Tr::order_parameters)
      .def("alignments", [](const Tr& tr) { return copy_of(tr.alignments()); })
      .def(
          "population_loss",
          [](const Tr& tr, const Array& s, const Array& c, double second_moment, double target_tail) {
            std::vector<double> sv(s.data(), s.data() + s.size()), cv(c.data(), c.data() + c.size());
            py::gil_scoped_release release;
            return tr.population_loss(sv, cv, second_moment, target_tail);
          },
          py::arg("s"), py::arg("c"), py::arg("second_moment"), py::arg("target_tail"))
      .def(
          "population_stats",
          [](const Tr& tr, const Array& s, const Array& c, double second_moment, double target_tail) {
            std::vector<double> sv(s.data(), s.data() + s.size()), cv(c.data(), c.data() + c.size());
            py::gil_scoped_release release;
            return tr.population_stats(sv, cv, second_moment, target_tail);
          },
          py::arg("s"), py::arg("c"), py::arg("second_moment"), py::arg("target_tail"),
          "The exact population loss and the collective overlap q_perp, from one Q = W W^T.")
      .def_property_readonly("step_count", &Tr::step_count)
      .def(
          "set_step_count", [](Tr& tr, std::uint64_t s) { tr.set_step_count(s); }, py::arg("step"),
          "Set the step counter (when restoring a checkpoint: the random streams are keyed by it).")
      .def_property_readonly("batch_loss", &Tr::last_batch_loss)
      .def_static(
          "memory_need", [](const sgd::Config& c) { return Tr::memory_need(c); }, py::arg("config"),
          "Bytes a trainer of these settings allocates (an upper bound).")
      .def_property_readonly("config", &Tr::config)
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

void register_sgd(py::module_& m) {
  py::class_<sgd::Function>(m, "Function", "An activation or target as the simulator evaluates it.")
      .def_static("named", &sgd::Function::named, py::arg("name"), py::arg("offset") = 0.0,
                  "A named function minus `offset` (s_0 for a centred activation), evaluated exactly.")
      .def_static(
          "hermite",
          [](const Array& coef, const std::string& field) {
            if (coef.ndim() != 1 || coef.size() == 0)
              throw std::invalid_argument(field + ": coefficients must be a non-empty 1-D array");
            return sgd::Function::hermite(std::vector<double>(coef.data(), coef.data() + coef.size()), field.c_str());
          },
          py::arg("coefficients"), py::arg("field") = std::string("function"),
          "A Hermite series sum_k c_k h_k(u), evaluated by the three-term recurrence.")
      .def("value", &sgd::Function::value, py::arg("u"));

  py::class_<sgd::Config>(m, "TrainerConfig", "Sizes, rates, seed, initial condition and threads of a trainer.")
      .def(py::init([](int d, int n, int batch, double dt, double lr_w, double lr_a, double noise, std::uint64_t seed,
                       double a0, double m0, int threads, const std::string& sampler, int a_dist, double a_sigma,
                       double a_positive, int m_dist) {
             return sgd::Config{.d = d, .n = n, .batch = batch, .dt = dt, .lr_w = lr_w, .lr_a = lr_a, .noise = noise,
                                .seed = seed, .a0 = a0, .m0 = m0, .threads = threads,
                                .sampler = sgd::sampler_from_name(sampler), .a_dist = a_dist, .m_dist = m_dist,
                                .a_sigma = a_sigma, .a_positive = a_positive};
           }),
           py::kw_only(), py::arg("d"), py::arg("n"), py::arg("batch"), py::arg("dt"), py::arg("lr_w"),
           py::arg("lr_a"), py::arg("noise") = 0.0, py::arg("seed") = 0, py::arg("a0") = 1.0, py::arg("m0") = 0.0,
           py::arg("threads") = 1, py::arg("sampler") = std::string("direct"), py::arg("a_dist") = 0,
           py::arg("a_sigma") = 0.0, py::arg("a_positive") = 0.5, py::arg("m_dist") = 0)
      .def_readonly("d", &sgd::Config::d)
      .def_readonly("n", &sgd::Config::n)
      .def_readonly("batch", &sgd::Config::batch)
      .def_readonly("dt", &sgd::Config::dt)
      .def_readonly("lr_w", &sgd::Config::lr_w)
      .def_readonly("lr_a", &sgd::Config::lr_a)
      .def_readonly("noise", &sgd::Config::noise)
      .def_readonly("seed", &sgd::Config::seed)
      .def_readonly("a0", &sgd::Config::a0)
      .def_readonly("m0", &sgd::Config::m0)
      .def_readonly("threads", &sgd::Config::threads)
      .def_property_readonly("sampler", [](const sgd::Config& c) { return std::string(sgd::sampler_name(c.sampler)); })
      .def_readonly("a_dist", &sgd::Config::a_dist)
      .def_readonly("a_sigma", &sgd::Config::a_sigma)
      .def_readonly("a_positive", &sgd::Config::a_positive)
      .def_readonly("m_dist", &sgd::Config::m_dist);

  py::class_<sgd::OrderParameters>(m, "OrderParameters", "Means and spreads over neurons of m_i and a_i.")
      .def_readonly("m_mean", &sgd::OrderParameters::m_mean)
      .def_readonly("m_std", &sgd::OrderParameters::m_std)
      .def_readonly("a_mean", &sgd::OrderParameters::a_mean)
      .def_readonly("a_std", &sgd::OrderParameters::a_std);

  py::class_<sgd::PopulationStats>(m, "PopulationStats", "The population loss and q_perp of a network.")
      .def_readonly("loss", &sgd::PopulationStats::loss)
      .def_readonly("q_perp", &sgd::PopulationStats::q_perp);

  register_trainer<float>(m, "Trainer32");
  register_trainer<double>(m, "Trainer64");
}

}  // namespace fastslow::bindings
