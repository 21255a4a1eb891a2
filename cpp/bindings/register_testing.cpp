// fastslow._core._testing: hooks for tests and benchmarks only (known-answer tests of the random
// streams, the float32 tanh kernel, a step on a given batch, the BLAS block counts).
#include <array>
#include <cstdint>

#include "../sgd/functions.hpp"
#include "../sgd/philox.hpp"
#include "../sgd/trainer.hpp"
#include "../sgd/ziggurat.hpp"
#include "common.hpp"

namespace fastslow::bindings {

namespace {
template <class T>
void register_trainer_hooks(py::module_& m) {
  using Tr = sgd::Trainer<T>;
  using TArray = py::array_t<T, py::array::c_style | py::array::forcecast>;
  m.def(
      "step_with_batch",
      [](Tr& tr, const TArray& X, const TArray& xi) {
        const auto& c = tr.config();
        if (X.ndim() != 2 || X.shape(0) != c.batch || X.shape(1) != c.d)
          throw std::invalid_argument("X: must have shape (batch, d)");
        if (xi.ndim() != 1 || xi.shape(0) != c.batch) throw std::invalid_argument("xi: must have shape (batch,)");
        tr.step_with_batch(X.data(), xi.data());
      },
      py::arg("trainer"), py::arg("X"), py::arg("xi"), "One step on a given batch and label noise.");
  m.def("set_blocks", &Tr::set_blocks, py::arg("trainer"), py::arg("rows"), py::arg("neurons"),
        "The number of row and neuron blocks of the BLAS calls (0 = the default rule).");
  m.def("blocks", &Tr::blocks, py::arg("trainer"), "The number of row and neuron blocks of a step's BLAS calls.");
}
}  // namespace

void register_testing(py::module_& m) {
  m.def(
      "philox4x32",
      [](std::array<std::uint32_t, 4> ctr, std::array<std::uint32_t, 2> key) { return rng::philox4x32(ctr, key); },
      py::arg("counter"), py::arg("key"), "Philox4x32-10 block (for known-answer tests).");
  m.def(
      "normal_row",
      [](std::uint64_t seed, int stream, std::uint64_t step, std::uint64_t row, int length, bool precise) {
        if (stream < 0 || stream > 3) throw std::invalid_argument("stream: must be in 0..3");
        if (length < 0) throw std::invalid_argument("length: must be >= 0");
        std::vector<double> out(static_cast<std::size_t>(length));
        rng::normal_row(seed, rng::Stream(stream), step, row, out.data(), out.size(), precise);
        return copy_of(out);
      },
      py::arg("seed"), py::arg("stream"), py::arg("step"), py::arg("row"), py::arg("length"), py::arg("precise"),
      "Box-Muller standard normals of one row of a stream (the float64 simulator's data).");
  m.def(
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
          return copy_of(out);
        }
        std::vector<double> out(n);
        fill(out.data());
        return copy_of(out);
      },
      py::arg("seed"), py::arg("stream"), py::arg("step"), py::arg("row"), py::arg("length"),
      py::arg("scalar") = false, py::arg("float32") = false,
      "Ziggurat standard normals of one row of a stream (the float32 simulator's data); `scalar` "
      "uses the one-word-at-a-time definition instead of the AVX2 path (the same numbers).");
  m.def(
      "tanh_f32",
      [](py::array_t<float, py::array::c_style | py::array::forcecast> x) {
        py::array_t<float> v(x.size()), dv(x.size());
        std::copy(x.data(), x.data() + x.size(), v.mutable_data());
        sgd::tanh_row_f32(v.mutable_data(), dv.mutable_data(), int(x.size()), 0.0f);
        return py::make_tuple(v, dv);
      },
      py::arg("x"), "The float32 simulator's tanh and its derivative (for accuracy tests).");
  register_trainer_hooks<float>(m);
  register_trainer_hooks<double>(m);
}

}  // namespace fastslow::bindings
