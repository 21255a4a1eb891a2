// fastslow._core.model: the limit model L(m, a) (LimitModel).
#include <cmath>

#include "../model.hpp"
#include "common.hpp"

namespace fastslow::bindings {

namespace {
void check_same_length(const Array& m, const Array& a) {
  if (m.ndim() != 1 || a.ndim() != 1 || m.size() != a.size())
    throw std::invalid_argument("m and a: must be 1-D arrays of equal length");
}
}  // namespace

void register_model(py::module_& mod) {
  py::class_<LimitModel>(mod, "LimitModel", "L(m, a) = a^2 A(m)/2 - a B(m) + C0 of the limit, with its derivatives.")
      .def(py::init([](const Array& s, const Array& c, double lr_w, double lr_a, double extra) {
             return LimitModel(std::vector<double>(s.data(), s.data() + s.size()),
                               std::vector<double>(c.data(), c.data() + c.size()), lr_w, lr_a, extra);
           }),
           py::arg("s"), py::arg("c"), py::arg("lr_w"), py::arg("lr_a"), py::arg("extra_loss") = 0.0)
      .def_property_readonly("lr_w", &LimitModel::lr_w)
      .def_property_readonly("lr_a", &LimitModel::lr_a)
      .def_property_readonly("s", [](const LimitModel& m) { return copy_of(m.s()); })
      .def_property_readonly("c", [](const LimitModel& m) { return copy_of(m.c()); })
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
}

}  // namespace fastslow::bindings
