// fastslow._core.hermite: normalised Hermite values, Gauss-Hermite rules, projections, and the named
// activations with their closed-form coefficients.
#include <iterator>
#include <string>

#include "../activation.hpp"
#include "../hermite.hpp"
#include "common.hpp"

namespace fastslow::bindings {

void register_hermite(py::module_& m) {
  m.def(
      "gauss_hermite",
      [](int N) {
        auto q = hermite::gauss_hermite(N);
        return py::make_tuple(copy_of(q.nodes), copy_of(q.weights));
      },
      py::arg("n"), "N-point Gauss-Hermite rule for E[f(z)], z ~ N(0,1): (nodes, probability weights).");
  m.def(
      "values",
      [](const Array& x, int K) {
        if (K < 0) throw std::invalid_argument("K: must be >= 0");
        Array out({py::ssize_t(x.size()), py::ssize_t(K + 1)});
        for (py::ssize_t i = 0; i < x.size(); ++i) hermite::values(x.data()[i], K, out.mutable_data() + i * (K + 1));
        return out;
      },
      py::arg("x"), py::arg("K"), "h_0..h_K at the points x: array (len(x), K+1).");
  m.def(
      "project",
      [](const Array& values, const Array& nodes, const Array& weights, int K) {
        return copy_of(hermite::project(span_of(values), span_of(nodes), span_of(weights), K));
      },
      py::arg("values"), py::arg("nodes"), py::arg("weights"), py::arg("K"),
      "Hermite coefficients c_k = sum_i w_i f(x_i) h_k(x_i), k = 0..K.");
  m.def("activation_names", []() {
    return std::vector<std::string>(std::begin(activation_names), std::end(activation_names));
  });
  m.def(
      "activation",
      [](const std::string& name, const Array& z, bool derivative) {
        const Activation act = activation_from_name(name);
        Array out(z.size());
        for (py::ssize_t i = 0; i < z.size(); ++i)
          out.mutable_data()[i] = derivative ? activation_derivative(act, z.data()[i]) : activation_value(act, z.data()[i]);
        return out;
      },
      py::arg("name"), py::arg("z"), py::arg("derivative") = false, "sigma(z) or sigma'(z) of a named activation.");
  m.def(
      "closed_form_coefficients",
      [](const std::string& name, int K) -> py::object {
        if (K < 0) throw std::invalid_argument("K: must be >= 0");
        auto s = closed_form_coefficients(activation_from_name(name), K);
        if (!s) return py::none();
        return copy_of(*s);
      },
      py::arg("name"), py::arg("K"), "Closed-form Hermite coefficients s_0..s_K of a named activation, or None.");
  m.def(
      "closed_form_second_moment",
      [](const std::string& name) -> py::object {
        auto v = closed_form_second_moment(activation_from_name(name));
        if (!v) return py::none();
        return py::float_(*v);
      },
      py::arg("name"), "E[sigma(z)^2] in closed form, or None.");
}

}  // namespace fastslow::bindings
