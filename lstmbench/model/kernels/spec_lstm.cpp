// The CPU kernels of the CellSpec LSTM: the recurrence forward and backward through time
// (recurrence.h), and one whole training step of K stacked networks (network_step.h).

#include <torch/extension.h>

#include "network_step.h"
#include "recurrence.h"

namespace {

// Python's side of train_step: consecutive steps, each with its own batch (lists of the
// per-step tensors), so a stretch of training between two evaluations is one call. The
// network's shape comes as plain arguments, and CTC's alignment as the capsule ctc.cpp's
// alignment_pointer() returns (None when the target is not CTC). Returns the losses (S, K)
// of the steps taken: it stops after a step whose update was not applied. `updates` is the
// count of updates made before this call (Adam's bias correction needs it).
torch::Tensor train_steps(std::vector<torch::Tensor> xs, std::vector<torch::Tensor> lengths,
                          std::vector<torch::Tensor> targets,
                          std::vector<torch::Tensor> target_lengths,
                          std::vector<torch::Tensor> params, std::vector<torch::Tensor> buffers,
                          std::vector<torch::Tensor> squares, std::vector<double> rates,
                          std::vector<double> momenta, int64_t updates, std::vector<bool> active,
                          std::vector<int64_t> spec, int64_t layers,
                          bool bidirectional, int64_t output, int64_t target,
                          pybind11::object ctc) {
  TORCH_CHECK(lengths.size() == xs.size() && targets.size() == xs.size() &&
                  target_lengths.size() == xs.size(),
              "train_steps: one batch of each kind per step");
  lstmbench::NetworkShape net{spec, layers, bidirectional, output, target};
  lstmbench::CtcAlignment alignment = nullptr;
  if (!ctc.is_none()) {
    alignment = reinterpret_cast<lstmbench::CtcAlignment>(
        ctc.cast<pybind11::capsule>().get_pointer<void>());
  }
  std::vector<torch::Tensor> losses;
  for (size_t s = 0; s < xs.size(); ++s) {
    auto [step_losses, applied] =
        lstmbench::train_step(xs[s], lengths[s], targets[s], target_lengths[s], params, buffers,
                              squares, rates, momenta, updates + int64_t(s) + 1, active, net,
                              alignment);
    losses.push_back(step_losses);
    if (!applied) break;
  }
  return torch::stack(losses);
}

// For each direction of a bidirectional layer: whether the thread that runs it flushes
// denormal floats, and that thread's number in ATen's pool (they differ with two threads).
std::vector<std::pair<bool, int64_t>> direction_threads() {
  std::vector<std::pair<bool, int64_t>> threads(2);
  lstmbench::each_direction(2, [&](int64_t dir) {
    threads[dir] = {lstmbench::flushes_denormals(), at::get_thread_num()};
  });
  return threads;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &lstmbench::forward,
        "K CellSpec LSTM runs over a sequence: (y, c, activations)");
  m.def("backward", &lstmbench::backward, "gradients of the CellSpec LSTM sequence");
  m.def("train_steps", &train_steps,
        "SGD or Adam steps of K stacked networks: each run's mean losses");
  m.def("direction_threads", &direction_threads,
        "(flushes denormals, thread number) of the threads that run a layer's two directions");
}
