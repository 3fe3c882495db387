#pragma once

// One training step of K stacked sequence networks in one call: the recurrent layers (both
// directions), the output layer, the loss and its gradient, the backward pass through all of
// it, and the update (SGD with momentum, or Adam), each run with its own learning rate and
// momentum.
//
// At batch 1 a step is a few hundred microseconds of arithmetic, and driven from Python
// through autograd it cost several times that in dispatch; here the step pays for its
// arithmetic only. It computes what training/losses.py and autograd compute for the same
// networks (tests/test_network_step.py holds them together in float64).
//
// Parameters come as one flat list: for each layer, for each direction (forward, then
// backward when bidirectional), weight_ih (K, G*H, I), weight_hh (K, G*H, H), bias (K, G*H)
// and peephole (K, P, H) or an empty tensor; then the output layer's weight (K, C, D) and
// bias (K, C). The momentum buffers (and Adam's second moments) follow the same list.

#include <torch/extension.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "recurrence.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <xmmintrin.h>
#define LSTMBENCH_MXCSR 1
#endif

namespace lstmbench {

enum OutputKind : int64_t { kSoftmax = 0, kLogistic = 1 };
enum TargetMode : int64_t { kCenter = 0, kEnd = 1, kCtc = 2 };
constexpr int64_t kBlank = 0;  // class 0: no label, as in data/base.py
constexpr int64_t kPerCell = 4;

// Whether v is finite, read from its bits: this file is built with -ffast-math, under which
// the compiler may assume no NaN or infinity and fold std::isfinite to true.
inline bool finite_bits(double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  constexpr uint64_t kExponent = 0x7ff0000000000000ULL;
  return (bits & kExponent) != kExponent;
}

inline bool finite_bits(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  constexpr uint32_t kExponent = 0x7f800000U;
  return (bits & kExponent) != kExponent;
}

// Whether every value of a contiguous float or double tensor is finite, by its bits.
inline bool all_finite(const torch::Tensor& t) {
  bool finite = true;
  AT_DISPATCH_FLOATING_TYPES(t.scalar_type(), "all_finite", [&] {
    const scalar_t* data = t.data_ptr<scalar_t>();
    for (int64_t j = 0; j < t.numel() && finite; ++j) finite = finite_bits(data[j]);
  });
  return finite;
}

// ctc.cpp's alignment, (log_probs (T, B, C), targets, input lengths, target lengths) ->
// (posteriors, nll). That module is built without -ffast-math (its recursions need
// infinities), so it hands over a pointer to the function rather than sharing a build.
using CtcAlignment = std::vector<torch::Tensor> (*)(torch::Tensor, torch::Tensor, torch::Tensor,
                                                    torch::Tensor);

struct NetworkShape {
  std::vector<int64_t> spec;  // the cell, as recurrence.h's make_layout reads it
  int64_t layers = 1;
  bool bidirectional = false;
  int64_t output = kSoftmax;
  int64_t target = kEnd;
};

// What the backward pass needs of one direction of one layer.
struct DirectionState {
  torch::Tensor x, y, c, acts;  // x: the input this direction read (time-reversed for backward)
};

// Each sequence of a padded (T, K, B, F) batch reversed within its own length (padding stays
// where it is), as model/nets.py's reverse_padded does.
inline torch::Tensor reverse_padded(const torch::Tensor& x, const std::vector<int64_t>& lengths) {
  TORCH_CHECK(x.is_contiguous(), "reverse_padded needs a contiguous tensor");
  const int64_t T = x.size(0), B = x.size(2), rows = x.size(1) * B;
  const int64_t row_bytes = x.size(3) * x.element_size();
  auto out = torch::empty_like(x);
  const char* src = static_cast<const char*>(x.data_ptr());
  char* dst = static_cast<char*>(out.data_ptr());
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t kb = 0; kb < rows; ++kb) {
      const int64_t n = lengths[kb % B];
      const int64_t from = t < n ? n - 1 - t : t;
      std::memcpy(dst + (t * rows + kb) * row_bytes, src + (from * rows + kb) * row_bytes,
                  row_bytes);
    }
  }
  return out;
}

// The calling thread's floating-point control: on x86 its MXCSR, whose flush-to-zero and
// denormals-are-zero bits torch.set_flush_denormal sets, for the calling thread only.
inline unsigned int float_control() {
#ifdef LSTMBENCH_MXCSR
  return _mm_getcsr();
#else
  return 0;
#endif
}

// Whether the calling thread flushes denormal floats to zero (x86: FTZ and DAZ both set).
inline bool flushes_denormals() {
#ifdef LSTMBENCH_MXCSR
  constexpr unsigned int kFlushBits = 0x8040;  // FTZ (bit 15) and DAZ (bit 6)
  return (float_control() & kFlushBits) == kFlushBits;
#else
  return false;
#endif
}

// A worker thread computes with its caller's control bits while in scope, and its own after:
// a worker that kept denormals, where the training loop flushes them, would compute a
// trained network's saturated gates on the CPU's slow path (benchmarks/denormals.py).
class CallerFloatControl {
 public:
  explicit CallerFloatControl(unsigned int caller) : own_(float_control()) {
#ifdef LSTMBENCH_MXCSR
    constexpr unsigned int kStatusBits = 0x3F;  // exception flags: the thread's own
    _mm_setcsr((caller & ~kStatusBits) | (own_ & kStatusBits));
#else
    (void)caller;
#endif
  }
  ~CallerFloatControl() {
#ifdef LSTMBENCH_MXCSR
    _mm_setcsr(own_);
#endif
  }
  CallerFloatControl(const CallerFloatControl&) = delete;
  CallerFloatControl& operator=(const CallerFloatControl&) = delete;

 private:
  unsigned int own_;
};

// fn(0) and, for a bidirectional layer, fn(1). The two directions share nothing until their
// outputs meet, so with two threads or more each gets a thread of its own: at batch sizes
// up to kSmallBatch the time loop is hand-written and runs on one thread, and this is what
// puts a second core to work. ATen runs parallel work nested inside serially, so each
// direction's products keep to its thread. (at::parallel_for runs on threads only where
// this is compiled with OpenMP: native.py.)
template <typename F>
void each_direction(int64_t directions, const F& fn) {
  if (directions == 1 || at::get_num_threads() < 2) {
    for (int64_t dir = 0; dir < directions; ++dir) fn(dir);
    return;
  }
  const unsigned int caller = float_control();
  at::parallel_for(0, directions, 1, [&](int64_t begin, int64_t end) {
    torch::NoGradGuard no_grad;  // grad mode is per thread, and the step records no graph
    CallerFloatControl as_caller(caller);
    for (int64_t dir = begin; dir < end; ++dir) fn(dir);
  });
}

// One direction forward; keeps what its backward needs.
inline torch::Tensor run_direction(DirectionState& state, const torch::Tensor& x,
                                   const std::vector<torch::Tensor>& params, size_t at,
                                   const std::vector<int64_t>& spec) {
  auto outs = forward(x, params[at], params[at + 1], params[at + 2], params[at + 3], spec);
  state = {x, outs[0], outs[1], outs[2]};
  return outs[0];
}

// Per-frame loss gradient, scaled for the mean over the batch, and each sample's loss.
// logits and grad are by run, (K, T*B, C); the CTC posteriors are time-major (T, K*B, C), the
// layout the alignment takes. Under CTC with softmax outputs the loss is left to the caller
// (the alignment's likelihood). Frames past a sequence's length get no
// gradient; under CTC its posteriors there are zero, which does the same.
template <typename T_>
void loss_gradient(const NetworkShape& net, const torch::Tensor& logits, torch::Tensor& grad,
                   const torch::Tensor& targets, const std::vector<int64_t>& lengths,
                   const torch::Tensor& posteriors,
                   const std::vector<bool>& active, std::vector<double>& sample_loss) {
  const int64_t K = logits.size(0), B = static_cast<int64_t>(lengths.size());
  const int64_t T = logits.size(1) / B, C = logits.size(2);
  const bool ctc = net.target == kCtc;
  const T_* z_data = logits.data_ptr<T_>();
  T_* g_data = grad.data_ptr<T_>();
  const int64_t* label_data = targets.data_ptr<int64_t>();
  const T_* post_data = ctc ? posteriors.data_ptr<T_>() : nullptr;
  std::vector<double> p(C);
  for (int64_t k = 0; k < K; ++k) {
    const double scale = active[k] ? 1.0 / B : 0.0;
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t b = 0; b < B; ++b) {
        const int64_t n = lengths[b];
        const T_* z = z_data + ((k * T + t) * B + b) * C;
        T_* g = g_data + ((k * T + t) * B + b) * C;
        const T_* post = ctc ? post_data + ((t * K + k) * B + b) * C : nullptr;
        double& loss = sample_loss[k * B + b];
        if (!ctc && t >= n) {
          std::fill(g, g + C, T_(0));
          continue;
        }
        int64_t label = kBlank;  // the frame's class under a fixed-position target
        if (!ctc) {
          const int64_t at = net.target == kCenter ? n / 2 : n - 1;
          if (t == at) label = label_data[(k * B + b) * targets.size(1)];
        }
        if (net.output == kSoftmax) {
          double top = z[0];
          for (int64_t j = 1; j < C; ++j) top = std::max(top, double(z[j]));
          double sum = 0;
          for (int64_t j = 0; j < C; ++j) sum += (p[j] = std::exp(z[j] - top));
          for (int64_t j = 0; j < C; ++j) p[j] /= sum;
          if (ctc) {  // gradient of the cross-entropy to the alignment, weighed by its mass
            double mass = 0;
            for (int64_t j = 0; j < C; ++j) mass += post[j];
            for (int64_t j = 0; j < C; ++j) g[j] = T_(scale * (mass * p[j] - post[j]));
          } else {
            loss += top + std::log(sum) - z[label];
            for (int64_t j = 0; j < C; ++j) g[j] = T_(scale * (p[j] - (j == label)));
          }
        } else {  // logistic: half the squared error of per-class sigmoids
          if (t >= n) {
            std::fill(g, g + C, T_(0));
            continue;
          }
          for (int64_t j = 0; j < C; ++j) {
            const double q = 1.0 / (1.0 + std::exp(-double(z[j])));
            const double wanted = ctc ? double(post[j]) : double(j == label);
            loss += 0.5 * (q - wanted) * (q - wanted);
            g[j] = T_(scale * (q - wanted) * q * (1.0 - q));
          }
        }
      }
    }
  }
}

// Adam's second-moment decay and the term that keeps its division finite, as
// training/config.py's ADAM_BETA2 and ADAM_EPS.
constexpr double kAdamBeta2 = 0.999, kAdamEps = 1e-8;

// SGD with momentum as torch.optim.SGD computes it: v = m v + g, p -= lr v, per run.
template <typename T_>
void sgd_update(torch::Tensor& param, const torch::Tensor& grad, torch::Tensor& buffer,
                const std::vector<double>& rates, const std::vector<double>& momenta) {
  const int64_t K = param.size(0), n = param.numel() / K;
  const torch::Tensor g = grad.contiguous();
  T_* p_data = param.data_ptr<T_>();
  T_* v_data = buffer.data_ptr<T_>();
  const T_* g_data = g.data_ptr<T_>();
  for (int64_t k = 0; k < K; ++k) {
    const T_ lr = T_(rates[k]), m = T_(momenta[k]);
    T_* p = p_data + k * n;
    T_* v = v_data + k * n;
    const T_* d = g_data + k * n;
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) {
      v[j] = m * v[j] + d[j];
      p[j] -= lr * v[j];
    }
  }
}

// Adam as torch.optim.Adam computes it, the run's momentum its beta1; `update` counts from 1.
template <typename T_>
void adam_update(torch::Tensor& param, const torch::Tensor& grad, torch::Tensor& first,
                 torch::Tensor& second, const std::vector<double>& rates,
                 const std::vector<double>& momenta, int64_t update) {
  const int64_t K = param.size(0), n = param.numel() / K;
  const torch::Tensor g = grad.contiguous();
  T_* p_data = param.data_ptr<T_>();
  T_* m_data = first.data_ptr<T_>();
  T_* v_data = second.data_ptr<T_>();
  const T_* g_data = g.data_ptr<T_>();
  const T_ b2 = T_(kAdamBeta2), eps = T_(kAdamEps);
  const T_ root_correction = T_(std::sqrt(1.0 - std::pow(kAdamBeta2, double(update))));
  for (int64_t k = 0; k < K; ++k) {
    const T_ b1 = T_(momenta[k]);
    const T_ step = T_(rates[k] / (1.0 - std::pow(momenta[k], double(update))));
    T_* p = p_data + k * n;
    T_* m = m_data + k * n;
    T_* v = v_data + k * n;
    const T_* d = g_data + k * n;
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) {
      m[j] = b1 * m[j] + (T_(1) - b1) * d[j];
      v[j] = b2 * v[j] + (T_(1) - b2) * d[j] * d[j];
      p[j] -= step * m[j] / (std::sqrt(v[j]) / root_correction + eps);
    }
  }
}

// x (T, K or 1, B, I): the batch, shared by all runs when its second dimension is 1;
// lengths (B); targets (K*B or B, L) and target_lengths (K*B or B), run by run or shared.
// Returns each run's mean loss over the batch (K,), float64, and whether the update was
// applied: only when the loss of every active run is finite. Inactive runs (finished)
// contribute no gradient. The update is SGD's where `squares` is empty, else Adam's (its
// second moments, like `buffers` one per parameter; `update` is its count from 1).
inline std::pair<torch::Tensor, bool> train_step(
    torch::Tensor x, const torch::Tensor& lengths_tensor, torch::Tensor targets,
    torch::Tensor target_lengths, std::vector<torch::Tensor> params,
    std::vector<torch::Tensor> buffers, std::vector<torch::Tensor> squares,
    const std::vector<double>& rates, const std::vector<double>& momenta, int64_t update,
    const std::vector<bool>& active, const NetworkShape& net, CtcAlignment ctc_alignment) {
  torch::NoGradGuard no_grad;
  const int64_t directions = net.bidirectional ? 2 : 1;
  const size_t cells = size_t(net.layers * directions);
  TORCH_CHECK(params.size() == cells * kPerCell + 2 && buffers.size() == params.size(),
              "train_step: the parameter list does not match the network's shape");
  const bool adam = !squares.empty();
  TORCH_CHECK(!adam || squares.size() == params.size(), "train_step: one Adam square a parameter");
  const int64_t K = params.back().size(0);
  TORCH_CHECK(int64_t(rates.size()) == K && int64_t(momenta.size()) == K &&
                  int64_t(active.size()) == K,
              "train_step: one learning rate, momentum and active flag per run");
  TORCH_CHECK(x.dim() == 4 && (x.size(1) == 1 || x.size(1) == K), "x is (T, K or 1, B, I)");
  TORCH_CHECK(net.target != kCtc || ctc_alignment, "train_step: CTC needs the alignment");
  const int64_t T = x.size(0), B = x.size(2);
  auto lengths_long = lengths_tensor.to(torch::kInt64).contiguous();
  const std::vector<int64_t> lengths(lengths_long.data_ptr<int64_t>(),
                                     lengths_long.data_ptr<int64_t>() + B);
  targets = targets.to(torch::kInt64).contiguous();
  if (targets.size(0) == B && K > 1) {  // one batch for all runs
    targets = targets.repeat({K, 1});
    target_lengths = target_lengths.repeat({K});
  }
  if (net.target != kCtc) {
    TORCH_CHECK((target_lengths == 1).all().item<bool>(),
                "fixed-position targets need exactly one label per sequence");
  }

  // Forward through the recurrent layers.
  std::vector<DirectionState> states(cells);
  torch::Tensor input = x.expand({T, K, B, x.size(3)}).contiguous();
  for (int64_t layer = 0; layer < net.layers; ++layer) {
    const size_t cell = size_t(layer * directions);
    const torch::Tensor reversed = net.bidirectional ? reverse_padded(input, lengths) : input;
    std::vector<torch::Tensor> outs(directions);
    each_direction(directions, [&](int64_t dir) {
      outs[dir] = run_direction(states[cell + dir], dir == 1 ? reversed : input, params,
                                (cell + dir) * kPerCell, net.spec);
    });
    input = net.bidirectional ? torch::cat({outs[0], reverse_padded(outs[1], lengths)}, 3)
                              : outs[0];
  }
  const torch::Tensor& w_out = params[cells * kPerCell];
  const torch::Tensor& b_out = params[cells * kPerCell + 1];
  const torch::Tensor top = by_run(input);  // (K, T*B, D)
  const torch::Tensor logits = torch::baddbmm(b_out.unsqueeze(1), top, w_out.transpose(1, 2));
  const int64_t C = logits.size(2);

  // The loss and its gradient.
  torch::Tensor log_probs, posteriors, nll;
  if (net.target == kCtc) {
    auto by_time_logits = logits.view({K, T, B, C}).permute({1, 0, 2, 3}).reshape({T, K * B, C});
    if (net.output == kSoftmax) {
      log_probs = torch::log_softmax(by_time_logits, -1);
    } else {  // aligned on the sigmoids normalized to sum to one per frame, as clstm did
      auto probs = torch::sigmoid(by_time_logits);
      log_probs = (probs / probs.sum(-1, true)).log();
    }
    auto lengths_by_run = lengths_long.repeat({K});
    auto aligned = ctc_alignment(log_probs, targets, lengths_by_run, target_lengths);
    posteriors = aligned[0].contiguous();
    nll = aligned[1].to(torch::kFloat64);
  }
  auto dlogits = torch::empty_like(logits);
  std::vector<double> sample_loss(K * B, 0.0);
  AT_DISPATCH_FLOATING_TYPES(logits.scalar_type(), "train_step_loss", [&] {
    loss_gradient<scalar_t>(net, logits, dlogits, targets, lengths, posteriors, active,
                            sample_loss);
  });
  if (net.target == kCtc && net.output == kSoftmax) {
    // The loss is CTC's negative log likelihood; where no alignment fits (not finite), the
    // cross-entropy against the posteriors stands in, as in losses.py.
    auto cross_entropy = -(posteriors * log_probs).sum({0, 2}).to(torch::kFloat64);
    const double* nll_data = nll.data_ptr<double>();
    const double* ce_data = cross_entropy.data_ptr<double>();
    for (int64_t kb = 0; kb < K * B; ++kb) {
      sample_loss[kb] = finite_bits(nll_data[kb]) ? nll_data[kb] : ce_data[kb];
    }
  }
  auto losses = torch::zeros({K}, torch::kFloat64);
  double* loss_data = losses.data_ptr<double>();
  bool finite = true;
  for (int64_t k = 0; k < K; ++k) {
    for (int64_t b = 0; b < B; ++b) loss_data[k] += sample_loss[k * B + b];
    loss_data[k] /= B;
    // A non-finite logit makes the loss NaN, as it does in torch: the arithmetic above,
    // built with -ffast-math, may not carry the NaN through.
    if (!all_finite(logits[k])) loss_data[k] = std::numeric_limits<double>::quiet_NaN();
    finite = finite && (!active[k] || finite_bits(loss_data[k]));
  }
  if (!finite) return {losses, false};  // the caller stops: nothing is updated

  // Backward: the output layer, then the recurrent layers from the top.
  std::vector<torch::Tensor> grads(params.size());
  grads[cells * kPerCell] = dlogits.transpose(1, 2).bmm(top);
  grads[cells * kPerCell + 1] = dlogits.sum(1);
  torch::Tensor d_input = by_time(dlogits.bmm(w_out), T);  // (T, K, B, D)
  for (int64_t layer = net.layers - 1; layer >= 0; --layer) {
    const size_t cell = size_t(layer * directions);
    const bool need_dx = layer > 0;
    const int64_t H = params[cell * kPerCell + 1].size(2);
    std::vector<torch::Tensor> dxs(directions);
    each_direction(directions, [&](int64_t dir) {
      const size_t at = (cell + dir) * kPerCell;
      const DirectionState& s = states[cell + dir];
      auto dy = d_input.narrow(3, dir * H, H).contiguous();
      if (dir == 1) dy = reverse_padded(dy, lengths);
      auto g = backward(dy, s.x, params[at], params[at + 1], params[at + 3], s.y, s.c, s.acts,
                        net.spec, need_dx);
      for (int j = 0; j < kPerCell; ++j) grads[at + j] = g[j + 1];
      if (need_dx) dxs[dir] = dir == 1 ? reverse_padded(g[0], lengths) : g[0];
    });
    d_input = need_dx && directions == 2 ? dxs[0] + dxs[1] : dxs[0];
  }

  AT_DISPATCH_FLOATING_TYPES(logits.scalar_type(), "train_step_update", [&] {
    for (size_t j = 0; j < params.size(); ++j) {
      if (params[j].numel() == 0) continue;  // an absent peephole
      if (adam) {
        adam_update<scalar_t>(params[j], grads[j], buffers[j], squares[j], rates, momenta,
                              update);
      } else {
        sgd_update<scalar_t>(params[j], grads[j], buffers[j], rates, momenta);
      }
    }
  });
  return {losses, true};
}

}  // namespace lstmbench
