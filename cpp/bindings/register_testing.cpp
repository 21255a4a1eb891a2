// fastslow._core._testing: hooks for tests and benchmarks only (known-answer tests of the random
// streams, the float32 tanh kernel, a step on a given batch, the BLAS block counts, the particle
// integrator's structured Newton solve).
#include <array>
#include <cstdint>
#include <string>

#include "../particles/structured.hpp"
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
  m.def(
      "step_with_draws",
      [](Tr& tr, const TArray& Z, const TArray& Xi, const TArray& xi) {
        const auto& c = tr.config();
        const int k = tr.projected().k();
        if (c.sampler != sgd::Sampler::Projected) throw std::invalid_argument("trainer: its sampler is not 'projected'");
        if (Z.ndim() != 2 || Z.shape(0) != c.batch || Z.shape(1) != k)
          throw std::invalid_argument("Z: must have shape (batch, min(d, n + 1))");
        if (Xi.ndim() != 2 || Xi.shape(0) != c.n || Xi.shape(1) != c.d) throw std::invalid_argument("Xi: must have shape (n, d)");
        if (xi.ndim() != 1 || xi.shape(0) != c.batch) throw std::invalid_argument("xi: must have shape (batch,)");
        tr.step_with_draws(Z.data(), Xi.data(), xi.data());
      },
      py::arg("trainer"), py::arg("Z"), py::arg("Xi"), py::arg("xi"),
      "One projected step on given draws: Z = X Q (batch x min(d, n + 1)), Xi (n x d), label noise xi.");
  m.def(
      "last_gradient",
      [](const Tr& tr) {
        const auto& c = tr.config();
        py::array_t<T> G({c.n, c.d}), ga(c.n);
        std::copy(tr.last_gradient().begin(), tr.last_gradient().end(), G.mutable_data());
        std::copy(tr.last_grad_a().begin(), tr.last_grad_a().end(), ga.mutable_data());
        return py::make_tuple(G, ga);
      },
      py::arg("trainer"), "(G, grad_a) of the last step: the gradients, means over the batch (n x d and n).");
  m.def(
      "basis",
      [](const Tr& tr) {
        const auto& c = tr.config();
        const auto& bs = tr.projected().basis();
        if (c.sampler != sgd::Sampler::Projected) throw std::invalid_argument("trainer: its sampler is not 'projected'");
        const int k = bs.k();
        static const char* names[] = {"auto", "identity", "cholesky_qr", "cholesky_qr2", "householder"};
        if (bs.identity())
          return py::tuple(py::make_tuple(py::none(), py::none(), names[int(bs.used())], bs.orthogonality()));
        py::array_t<T> Qt({k, c.d}), R({k, c.n + 1});
        std::copy(bs.Qt(), bs.Qt() + std::size_t(k) * c.d, Qt.mutable_data());
        std::copy(bs.R(), bs.R() + std::size_t(k) * (c.n + 1), R.mutable_data());
        return py::tuple(py::make_tuple(Qt, R, names[int(bs.used())], bs.orthogonality()));
      },
      py::arg("trainer"),
      "(Q^T, R, method, |Q^T Q - I|_F after the first pass) of the last projected step's basis of span [W; theta].");
  m.def(
      "set_basis_method",
      [](Tr& tr, const std::string& method) {
        sgd::BasisMethod m;
        if (method == "auto") m = sgd::BasisMethod::Auto;
        else if (method == "cholesky_qr") m = sgd::BasisMethod::CholeskyQR;
        else if (method == "cholesky_qr2") m = sgd::BasisMethod::CholeskyQR2;
        else if (method == "householder") m = sgd::BasisMethod::Householder;
        else throw std::invalid_argument("method: must be auto, cholesky_qr, cholesky_qr2 or householder");
        tr.projected().basis().force(m);
      },
      py::arg("trainer"), py::arg("method"), "Force the projected sampler's basis method (tests).");
  m.def(
      "set_forward_gemm", [](Tr& tr, bool on) { tr.projected().set_forward_gemm(on); }, py::arg("trainer"),
      py::arg("on"), "The projected forward P = Z R as a general GEMM instead of the triangular product (benchmarks).");
  m.def(
      "factor_triangular", [](const Tr& tr) { return tr.projected().factor_triangular(); }, py::arg("trainer"),
      "Whether the last projected step's L (L L^T = M^T M) was the plain Cholesky factor (else pivoted).");
  m.def("set_blocks", &Tr::set_blocks, py::arg("trainer"), py::arg("rows"), py::arg("neurons"),
        "The number of row and neuron blocks of the BLAS calls (0 = the default rule).");
  m.def("blocks", &Tr::blocks, py::arg("trainer"), "The number of row and neuron blocks of a step's BLAS calls.");
}
// M x = b with the structured solver (particles/structured.hpp) for S stages:
// D (S, N, 2, 2), U and V (S, 2N, r), H (S, S), b (N 2S) in the layout (particle, stage, component).
template <int S>
Array structured_solve(const Array& D, const Array& U, const Array& V, const Array& H, const Array& b) {
  if (D.ndim() != 4 || D.shape(0) != S || D.shape(2) != 2 || D.shape(3) != 2)
    throw std::invalid_argument("D: must have shape (S, N, 2, 2)");
  const std::size_t N = std::size_t(D.shape(1));
  if (U.ndim() != 3 || V.ndim() != 3 || U.shape(0) != S || V.shape(0) != S || std::size_t(U.shape(1)) != 2 * N ||
      std::size_t(V.shape(1)) != 2 * N || U.shape(2) != V.shape(2) || U.shape(2) < 1)
    throw std::invalid_argument("U, V: must have shape (S, 2N, r >= 1)");
  if (std::size_t(b.size()) != 2 * S * N) throw std::invalid_argument("b: must hold 2 S N values");
  const int r = int(U.shape(2));
  particles::StructuredSolver<S> solver;
  solver.resize(N, r);
  for (int t = 0; t < S; ++t) {
    std::copy(D.data() + t * 4 * N, D.data() + (t + 1) * 4 * N, solver.D(t));
    std::copy(U.data() + t * 2 * N * r, U.data() + (t + 1) * 2 * N * r, solver.U(t));
    std::copy(V.data() + t * 2 * N * r, V.data() + (t + 1) * 2 * N * r, solver.V(t));
  }
  double h[S][S];
  for (int i = 0; i < S; ++i)
    for (int j = 0; j < S; ++j) h[i][j] = H.data()[i * S + j];
  if (!solver.factor(h)) throw std::runtime_error("structured solve: singular matrix");
  Array x(b.size());
  std::copy(b.data(), b.data() + b.size(), x.mutable_data());
  solver.solve(x.mutable_data());
  return x;
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
        if (stream < 0 || stream >= int(rng::kStreams))
          throw std::invalid_argument("stream: must be in 0.." + std::to_string(rng::kStreams - 1));
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
        if (stream < 0 || stream >= int(rng::kStreams))
          throw std::invalid_argument("stream: must be in 0.." + std::to_string(rng::kStreams - 1));
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
  m.def(
      "structured_solve",
      [](const Array& D, const Array& U, const Array& V, const Array& H, const Array& b) {
        if (H.ndim() != 2 || H.shape(0) != H.shape(1)) throw std::invalid_argument("H: must be square");
        if (H.shape(0) == 1) return structured_solve<1>(D, U, V, H, b);
        if (H.shape(0) == 3) return structured_solve<3>(D, U, V, H, b);
        throw std::invalid_argument("H: S must be 1 or 3");
      },
      py::arg("D"), py::arg("U"), py::arg("V"), py::arg("H"), py::arg("b"),
      "Solve (I - (H x I) diag(D_t + U_t V_t^T)) x = b by the particle integrator's structured solver.");
  register_trainer_hooks<float>(m);
  register_trainer_hooks<double>(m);
}

}  // namespace fastslow::bindings
