// The compiled module fastslow._core (private): one submodule per concept, registered by its own
// file, as boost-histogram does; the test hooks live in fastslow._core._testing.
#include "../blas.hpp"
#include "common.hpp"

PYBIND11_MODULE(_core, mod) {
  namespace b = fastslow::bindings;
  mod.doc() = "fastslow C++ core (private): Hermite series, the limit model, the stiff integrator, the SGD simulator, the effective map.";
  fastslow::blas::ensure_single_threaded();
  auto runtime = mod.def_submodule("runtime", "Cancellation tokens and the processor count.");
  b::register_runtime(runtime);
  auto hermite = mod.def_submodule("hermite", "Normalised Hermite polynomials, Gauss-Hermite rules, named activations.");
  b::register_hermite(hermite);
  auto model = mod.def_submodule("model", "The limit model: L(m, a), its derivatives, the ODE right-hand side.");
  b::register_model(model);
  auto ode = mod.def_submodule("ode", "The Radau IIA (5) integrator: one trajectory, a batch, dense output.");
  b::register_ode(ode);
  auto sgd = mod.def_submodule("sgd", "The SGD simulator of the finite network.");
  b::register_sgd(sgd);
  auto effective = mod.def_submodule("effective", "The effective map of the finite network at finite dt, width and batch.");
  b::register_effective(effective);
  auto particles = mod.def_submodule("particles", "The mean-field particle system and its structured Radau IIA (5) integrator.");
  b::register_particles(particles);
  auto testing = mod.def_submodule("_testing", "Hooks for tests and benchmarks only: random streams, kernels, blocks.");
  b::register_testing(testing);
}
