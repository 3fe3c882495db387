// CTC forward-backward on the CPU: the frame posteriors of the alignment and the negative log
// likelihood of each target, the same quantities as lstmbench.targets.ctc_alignment_reference.
//
// The recursions run in probability space with every frame rescaled to sum to one (the scales
// kept as logs), which costs a few multiply-adds per state where log space costs several exp
// and log calls. Emission probabilities are taken relative to each frame's most likely label of
// the target, so a frame never underflows as a whole. Should a sequence still underflow (its
// outputs put all the mass on paths e^-700 below others), it is redone in log space.
//
// Built without -ffast-math: infinities mark impossible alignments and must compare as such.

#include <torch/extension.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr int64_t kBlank = 0;
constexpr double kFloor = -1e4;  // log probabilities are clamped here, as in the reference

// One sequence: its log probabilities (T rows of C, stride between rows) and target.
template <typename scalar_t>
struct Sequence {
  const scalar_t* lp;
  int64_t stride;
  int64_t steps;
  std::vector<int64_t> ext;  // blank-augmented target, 2L+1 states
  std::vector<char> skip;    // state s may be entered from s-2

  double emit_log(int64_t t, int64_t s) const {
    return std::max(static_cast<double>(lp[t * stride + ext[s]]), kFloor);
  }
};

template <typename scalar_t>
Sequence<scalar_t> make_sequence(const scalar_t* lp, int64_t stride, int64_t steps,
                                 const int64_t* target, int64_t length) {
  Sequence<scalar_t> seq{lp, stride, steps, std::vector<int64_t>(2 * length + 1, kBlank),
               std::vector<char>(2 * length + 1, 0)};
  for (int64_t k = 0; k < length; ++k) seq.ext[2 * k + 1] = target[k];
  for (size_t s = 2; s < seq.ext.size(); ++s)
    seq.skip[s] = seq.ext[s] != kBlank && seq.ext[s] != seq.ext[s - 2];
  return seq;
}

// Frames the target needs at least: one per label plus a blank between equal neighbours.
template <typename scalar_t>
int64_t frames_needed(const Sequence<scalar_t>& seq) {
  int64_t labels = (static_cast<int64_t>(seq.ext.size()) - 1) / 2, repeats = 0;
  for (int64_t k = 1; k < labels; ++k) repeats += seq.ext[2 * k + 1] == seq.ext[2 * k - 1];
  return labels + repeats;
}

// Buffers kept per thread between calls: a fresh megabyte per sequence costs page faults
// that take longer than the recursions themselves.
struct Workspace {
  std::vector<double> emit, gamma, beta, next, label_log, label_emit;
};

// Scaled probability-space pass. Leaves in gamma (T x S) the posteriors, each frame summing to
// one, and returns the log likelihood, or NaN when the scaled values underflowed (then log
// space is used).
template <typename scalar_t>
double align_scaled(const Sequence<scalar_t>& seq, Workspace& w) {
  const int64_t T = seq.steps, S = static_cast<int64_t>(seq.ext.size());
  const int64_t labels = S / 2;
  w.emit.resize(T * S);
  w.gamma.resize(T * S);  // holds alpha until the backward pass turns it into gamma in place
  w.label_log.resize(labels);
  w.label_emit.resize(labels);
  double* emit = w.emit.data();
  double* alpha = w.gamma.data();
  double* label_log = w.label_log.data();
  double* label_emit = w.label_emit.data();
  double log_scale = 0.0;
  for (int64_t t = 0; t < T; ++t) {
    // One exp per label and one for the blank (half the states are blanks).
    const double blank_log = seq.emit_log(t, 0);
    double top = blank_log;
    for (int64_t k = 0; k < labels; ++k) {
      label_log[k] = seq.emit_log(t, 2 * k + 1);
      top = std::max(top, label_log[k]);
    }
    const double blank = std::exp(blank_log - top);
    for (int64_t k = 0; k < labels; ++k) label_emit[k] = std::exp(label_log[k] - top);
    double* e = &emit[t * S];
    for (int64_t k = 0; k < labels; ++k) {
      e[2 * k] = blank;
      e[2 * k + 1] = label_emit[k];
    }
    e[S - 1] = blank;
    double* a = &alpha[t * S];
    if (t == 0) {
      std::fill(a, a + S, 0.0);
      a[0] = e[0];
      if (S > 1) a[1] = e[1];
    } else {
      const double* prev = &alpha[(t - 1) * S];
      for (int64_t s = 0; s < S; ++s) {
        double paths = prev[s] + (s >= 1 ? prev[s - 1] : 0.0) + (seq.skip[s] ? prev[s - 2] : 0.0);
        a[s] = paths * e[s];
      }
    }
    double total = 0.0;
    for (int64_t s = 0; s < S; ++s) total += a[s];
    if (!(total > 0.0) || !std::isfinite(total)) return std::nan("");
    for (int64_t s = 0; s < S; ++s) a[s] /= total;
    log_scale += top + std::log(total);
  }
  const double* last = &alpha[(T - 1) * S];
  double end = last[S - 1] + (S > 1 ? last[S - 2] : 0.0);
  if (!(end > 0.0)) return std::nan("");

  // Backward, without the emission of frame t itself, so alpha * beta is the posterior mass.
  w.beta.assign(S, 0.0);
  w.next.resize(S);
  double* beta = w.beta.data();
  double* next = w.next.data();
  beta[S - 1] = 1.0;
  if (S > 1) beta[S - 2] = 1.0;
  for (int64_t t = T - 1; t >= 0; --t) {
    if (t < T - 1) {
      const double* e = &emit[(t + 1) * S];
      for (int64_t s = 0; s < S; ++s) {
        double v = beta[s] * e[s];
        if (s + 1 < S) v += beta[s + 1] * e[s + 1];
        if (s + 2 < S && seq.skip[s + 2]) v += beta[s + 2] * e[s + 2];
        next[s] = v;
      }
      double total = 0.0;
      for (int64_t s = 0; s < S; ++s) total += next[s];
      if (!(total > 0.0) || !std::isfinite(total)) return std::nan("");
      for (int64_t s = 0; s < S; ++s) beta[s] = next[s] / total;
    }
    double* g = &alpha[t * S];  // alpha of frame t is not needed after this
    double mass = 0.0;
    for (int64_t s = 0; s < S; ++s) mass += g[s] *= beta[s];
    if (!(mass > 0.0)) return std::nan("");
    for (int64_t s = 0; s < S; ++s) g[s] /= mass;
  }
  return log_scale + std::log(end);
}

double log_add(double a, double b) {
  if (a == -kInf) return b;
  if (b == -kInf) return a;
  double top = std::max(a, b);
  return top + std::log1p(std::exp(-std::fabs(a - b)));
}

// The same in log space: slower, never underflows.
template <typename scalar_t>
double align_log(const Sequence<scalar_t>& seq, std::vector<double>& gamma) {
  const int64_t T = seq.steps, S = static_cast<int64_t>(seq.ext.size());
  std::vector<double> alpha(T * S, -kInf), beta(T * S, -kInf);
  gamma.resize(T * S);
  alpha[0] = seq.emit_log(0, 0);
  if (S > 1) alpha[1] = seq.emit_log(0, 1);
  for (int64_t t = 1; t < T; ++t) {
    const double* prev = &alpha[(t - 1) * S];
    for (int64_t s = 0; s < S; ++s) {
      double paths = prev[s];
      if (s >= 1) paths = log_add(paths, prev[s - 1]);
      if (seq.skip[s]) paths = log_add(paths, prev[s - 2]);
      alpha[t * S + s] = paths + seq.emit_log(t, s);
    }
  }
  double ll = log_add(alpha[(T - 1) * S + S - 1], S > 1 ? alpha[(T - 1) * S + S - 2] : -kInf);
  beta[(T - 1) * S + S - 1] = 0.0;
  if (S > 1) beta[(T - 1) * S + S - 2] = 0.0;
  for (int64_t t = T - 2; t >= 0; --t) {
    for (int64_t s = 0; s < S; ++s) {
      const double* after = &beta[(t + 1) * S];
      double v = after[s] + seq.emit_log(t + 1, s);
      if (s + 1 < S) v = log_add(v, after[s + 1] + seq.emit_log(t + 1, s + 1));
      if (s + 2 < S && seq.skip[s + 2]) v = log_add(v, after[s + 2] + seq.emit_log(t + 1, s + 2));
      beta[t * S + s] = v;
    }
  }
  for (int64_t i = 0; i < T * S; ++i) {
    double g = std::exp(alpha[i] + beta[i] - ll);
    gamma[i] = std::isfinite(g) ? g : 0.0;
  }
  return ll;
}

// Adds a sequence's state posteriors (T x S) into its class posteriors: rows of C values,
// row t at post + t * row_stride.
template <typename scalar_t, typename out_t>
void add_posteriors(const Sequence<scalar_t>& seq, const std::vector<double>& gamma, out_t* post,
                    int64_t row_stride) {
  const int64_t S = static_cast<int64_t>(seq.ext.size());
  for (int64_t t = 0; t < seq.steps; ++t) {
    out_t* row = post + t * row_stride;
    const double* g = &gamma[t * S];
    for (int64_t s = 0; s < S; ++s) row[seq.ext[s]] += static_cast<out_t>(g[s]);
  }
}

template <typename scalar_t>
void align_batch(const torch::Tensor& log_probs, const torch::Tensor& targets,
                 const torch::Tensor& input_lengths, const torch::Tensor& target_lengths,
                 torch::Tensor& posteriors, torch::Tensor& nll) {
  const int64_t T = log_probs.size(0), B = log_probs.size(1), C = log_probs.size(2);
  const int64_t L = targets.size(1);
  const scalar_t* lp = log_probs.data_ptr<scalar_t>();
  scalar_t* post = posteriors.data_ptr<scalar_t>();
  scalar_t* nll_data = nll.data_ptr<scalar_t>();
  const int64_t* tgt = targets.data_ptr<int64_t>();
  const int64_t* lengths = input_lengths.data_ptr<int64_t>();
  const int64_t* labels = target_lengths.data_ptr<int64_t>();
  at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      const int64_t steps = std::min(lengths[b], T);
      auto seq = make_sequence(lp + b * C, B * C, steps, tgt + b * L, labels[b]);
      if (steps < 1 || frames_needed(seq) > steps) {
        nll_data[b] = kInf;  // the target cannot fit: no alignment, no gradient
        continue;
      }
      thread_local Workspace w;
      double ll = align_scaled(seq, w);
      if (std::isnan(ll)) ll = align_log(seq, w.gamma);
      nll_data[b] = static_cast<scalar_t>(-ll);
      add_posteriors(seq, w.gamma, post + b * C, B * C);
    }
  });
}

// log_probs (T, B, C) float32 or float64 (computed in float64 either way, returned in its
// type); targets (B, L); lengths (B) each.
std::vector<torch::Tensor> alignment(torch::Tensor log_probs, torch::Tensor targets,
                                     torch::Tensor input_lengths, torch::Tensor target_lengths) {
  TORCH_CHECK(log_probs.dim() == 3, "log_probs must be (T, B, C)");
  log_probs = log_probs.contiguous();
  targets = targets.to(torch::kInt64).contiguous();
  input_lengths = input_lengths.to(torch::kInt64).contiguous();
  target_lengths = target_lengths.to(torch::kInt64).contiguous();
  auto posteriors = torch::zeros_like(log_probs);
  auto nll = torch::empty({log_probs.size(1)}, log_probs.options());
  AT_DISPATCH_FLOATING_TYPES(log_probs.scalar_type(), "ctc_alignment", [&] {
    align_batch<scalar_t>(log_probs, targets, input_lengths, target_lengths, posteriors, nll);
  });
  return {posteriors, nll};
}

// For tests: the log-space pass alone, to check it against the reference where the scaled
// pass would not fall back to it.
std::vector<torch::Tensor> alignment_log_space(torch::Tensor log_probs, torch::Tensor targets,
                                               torch::Tensor input_lengths,
                                               torch::Tensor target_lengths) {
  TORCH_CHECK(log_probs.dim() == 3 && log_probs.size(1) == 1 &&
                  log_probs.scalar_type() == torch::kFloat64,
              "one float64 sequence: (T, 1, C)");
  log_probs = log_probs.contiguous();
  targets = targets.to(torch::kInt64).contiguous();
  const int64_t T = std::min(input_lengths.item<int64_t>(), log_probs.size(0));
  const int64_t C = log_probs.size(2);
  auto seq = make_sequence(log_probs.data_ptr<double>(), C, T, targets.data_ptr<int64_t>(),
                           target_lengths.item<int64_t>());
  std::vector<double> gamma(T * seq.ext.size());
  double ll = align_log(seq, gamma);
  auto posteriors = torch::zeros_like(log_probs);
  add_posteriors(seq, gamma, posteriors.data_ptr<double>(), C);
  return {posteriors, torch::full({1}, -ll, log_probs.options())};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("alignment", &alignment, "CTC frame posteriors and negative log likelihoods");
  m.def("alignment_log_space", &alignment_log_space, "the log-space pass for one sequence");
  // For the training step of spec_lstm.cpp, which calls the alignment without Python between.
  m.def("alignment_pointer", [] {
    return pybind11::capsule(reinterpret_cast<void*>(&alignment), "lstmbench.ctc_alignment");
  });
}
