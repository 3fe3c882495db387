#pragma once

// Forward and backward through time of the CellSpec LSTM on the CPU, the time loop in C++.
//
// One matrix product per step for the recurrence (through ATen, so MKL/oneDNN does it) and the
// gate arithmetic of a step fused into a few passes over rows that stay in the L1 cache. The
// passes are plain loops the compiler vectorizes (exp through glibc's vector math library).
// The weight gradients are formed after the loop, each in one product over all steps.
//
// Layout: pre-activations and activations are (T, K, B, G*H) for K runs, with the spec's
// blocks (i, r, u, o: those present) side by side in that order; peepholes are (K, P, H), one
// row per gate present.

#include <torch/extension.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace lstmbench {

enum Nonlinearity : int64_t { kTanh = 0, kRelu = 1, kLinear = 2 };

// Which blocks a cell has and where they sit; mirrors CellSpec.blocks / peephole_gates.
struct Layout {
  int64_t hidden = 0;
  int64_t g = kTanh, h = kTanh;
  int64_t i = -1, r = -1, u = -1, o = -1;        // block index, -1 when absent
  int64_t peep_i = -1, peep_r = -1, peep_o = -1;  // peephole row, -1 when absent
  bool coupled = false;
  int64_t blocks = 0;

  Layout(int64_t hidden_size, int64_t g_kind, int64_t h_kind, bool input_gate, bool forget_gate,
         bool output_gate, bool coupled_gates, bool peepholes)
      : hidden(hidden_size), g(g_kind), h(h_kind), coupled(coupled_gates) {
    int64_t peep_rows = 0;
    if (input_gate) {
      i = blocks++;
      if (peepholes) peep_i = peep_rows++;
    }
    if (forget_gate && !coupled) {
      r = blocks++;
      if (peepholes) peep_r = peep_rows++;
    }
    u = blocks++;
    if (output_gate) {
      o = blocks++;
      if (peepholes) peep_o = peep_rows++;
    }
  }
};

// The exp argument is clamped: under -ffast-math the compiler may assume no infinities, and
// an exp that overflows (a saturated gate) then turns into NaN. At |x| = 40 both functions
// are already 0 or 1 (-1) to float and double precision, so the clamp changes no result.
template <typename T>
inline T clamp_exp_arg(T x) {
  return x < T(-80) ? T(-80) : (x > T(80) ? T(80) : x);
}

template <typename T>
inline T sigmoid(T x) {
  return T(1) / (T(1) + std::exp(clamp_exp_arg(-x)));
}

// tanh through one exp, so the loop vectorizes like the sigmoid does.
template <typename T>
inline T fast_tanh(T x) {
  return T(1) - T(2) / (T(1) + std::exp(clamp_exp_arg(T(2) * x)));
}

// z = sigmoid(z + peep * cell), peep may be null.
template <typename T>
void gate_inplace(T* __restrict z, const T* __restrict peep, const T* __restrict cell, int64_t n) {
  if (peep) {
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) z[j] = sigmoid(z[j] + peep[j] * cell[j]);
  } else {
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) z[j] = sigmoid(z[j]);
  }
}

template <typename T>
void activate(const T* __restrict in, T* __restrict out, int64_t kind, int64_t n) {
  if (kind == kTanh) {
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) out[j] = fast_tanh(in[j]);
  } else if (kind == kRelu) {
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) out[j] = in[j] > T(0) ? in[j] : T(0);
  } else if (in != out) {
    for (int64_t j = 0; j < n; ++j) out[j] = in[j];
  }
}

// d = d * f'(x) where `value` is f(x) (tanh, relu) and f is the nonlinearity `kind`.
template <typename T>
void times_derivative(T* __restrict d, const T* __restrict value, int64_t kind, int64_t n) {
  if (kind == kTanh) {
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) d[j] *= T(1) - value[j] * value[j];
  } else if (kind == kRelu) {
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) d[j] = value[j] > T(0) ? d[j] : T(0);
  }
}

// Scratch rows for one batch row: the constants for absent gates and intermediate values.
template <typename T>
struct Rows {
  std::vector<T> ones, zeros, r, hc, dc_in;
  explicit Rows(int64_t n) : ones(n, T(1)), zeros(n, T(0)), r(n), hc(n), dc_in(n) {}
};

// One step's gate arithmetic for one batch row: `a` holds the pre-activations and receives
// the activations; writes c and y.
template <typename T>
void forward_row(const Layout& L, T* a, const T* c_prev, T* c, T* y, const T* peep,
                 Rows<T>& s) {
  const int64_t H = L.hidden;
  T* gi = L.i >= 0 ? a + L.i * H : s.ones.data();
  if (L.i >= 0) gate_inplace(gi, L.peep_i >= 0 ? peep + L.peep_i * H : nullptr, c_prev, H);
  T* gr;
  if (L.coupled) {
    gr = s.r.data();
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) gr[j] = T(1) - gi[j];
  } else if (L.r >= 0) {
    gr = a + L.r * H;
    gate_inplace(gr, L.peep_r >= 0 ? peep + L.peep_r * H : nullptr, c_prev, H);
  } else {
    gr = s.ones.data();
  }
  T* gu = a + L.u * H;
  activate(gu, gu, L.g, H);
#pragma omp simd
  for (int64_t j = 0; j < H; ++j) c[j] = gr[j] * c_prev[j] + gi[j] * gu[j];
  activate(c, s.hc.data(), L.h, H);
  if (L.o >= 0) {
    T* go = a + L.o * H;
    gate_inplace(go, L.peep_o >= 0 ? peep + L.peep_o * H : nullptr, c, H);
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) y[j] = go[j] * s.hc[j];
  } else {
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) y[j] = s.hc[j];
  }
}

// One step backward for one batch row. dy: gradient of y_t (output plus recurrence);
// dc: gradient of c_t from later steps, replaced by that of c_{t-1}; dz receives the
// gradients of the pre-activations; dpeep accumulates the peephole gradients.
template <typename T>
void backward_row(const Layout& L, const T* a, const T* c_prev, const T* c, const T* dy, T* dc,
                  T* dz, const T* peep, T* dpeep, Rows<T>& s) {
  const int64_t H = L.hidden;
  const T* gi = L.i >= 0 ? a + L.i * H : s.ones.data();
  const T* gu = a + L.u * H;
  const T* gr;
  if (L.coupled) {
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) s.r[j] = T(1) - gi[j];
    gr = s.r.data();
  } else {
    gr = L.r >= 0 ? a + L.r * H : s.ones.data();
  }
  T* hc = s.hc.data();
  activate(c, hc, L.h, H);
  T* dhc = s.dc_in.data();  // gradient of h(c), then of c through y
  if (L.o >= 0) {
    const T* go = a + L.o * H;
    T* dzo = dz + L.o * H;
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      dzo[j] = dy[j] * hc[j] * go[j] * (T(1) - go[j]);
      dhc[j] = dy[j] * go[j];
    }
  } else {
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) dhc[j] = dy[j];
  }
  if (L.h == kRelu) {
    times_derivative(dhc, c, kRelu, H);
  } else {
    times_derivative(dhc, hc, L.h, H);
  }
#pragma omp simd
  for (int64_t j = 0; j < H; ++j) dc[j] += dhc[j];
  if (L.peep_o >= 0) {
    const T* p = peep + L.peep_o * H;
    const T* dzo = dz + L.o * H;
    T* dp = dpeep + L.peep_o * H;
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      dc[j] += dzo[j] * p[j];
      dp[j] += dzo[j] * c[j];
    }
  }
  // dc is now the full gradient of c_t.
  T* dzu = dz + L.u * H;
#pragma omp simd
  for (int64_t j = 0; j < H; ++j) dzu[j] = dc[j] * gi[j];
  times_derivative(dzu, gu, L.g, H);
  if (L.i >= 0) {
    T* dzi = dz + L.i * H;
    if (L.coupled) {
#pragma omp simd
      for (int64_t j = 0; j < H; ++j)
        dzi[j] = dc[j] * (gu[j] - c_prev[j]) * gi[j] * (T(1) - gi[j]);
    } else {
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) dzi[j] = dc[j] * gu[j] * gi[j] * (T(1) - gi[j]);
    }
  }
  if (L.r >= 0) {
    T* dzr = dz + L.r * H;
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) dzr[j] = dc[j] * c_prev[j] * gr[j] * (T(1) - gr[j]);
  }
  // Gradient of c_{t-1}: through the forget gate and through the peepholes of i and r.
#pragma omp simd
  for (int64_t j = 0; j < H; ++j) dc[j] *= gr[j];
  const int64_t peep_rows[2] = {L.peep_i, L.peep_r};
  const int64_t gate_blocks[2] = {L.i, L.r};
  for (int k = 0; k < 2; ++k) {
    if (peep_rows[k] < 0) continue;
    const T* p = peep + peep_rows[k] * H;
    const T* dzk = dz + gate_blocks[k] * H;
    T* dp = dpeep + peep_rows[k] * H;
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      dc[j] += dzk[j] * p[j];
      dp[j] += dzk[j] * c_prev[j];
    }
  }
}

// Below this many batch rows a step's recurrent product is a few hand-written dot products:
// at batch 1 a library call costs more in dispatch than the arithmetic itself.
constexpr int64_t kSmallBatch = 4;

// out (rows x n) += in (rows x k) @ mat, mat (k x n) row-major. Four rows of mat per pass, so
// each output vector is loaded and stored a quarter as often.
template <typename T>
void accumulate_product(T* __restrict out, const T* __restrict in, const T* __restrict mat,
                        int64_t rows, int64_t n, int64_t k) {
  for (int64_t b = 0; b < rows; ++b) {
    T* ob = out + b * n;
    const T* ib = in + b * k;
    int64_t r = 0;
    for (; r + 4 <= k; r += 4) {
      const T x0 = ib[r], x1 = ib[r + 1], x2 = ib[r + 2], x3 = ib[r + 3];
      const T* m0 = mat + r * n;
      const T* m1 = m0 + n;
      const T* m2 = m1 + n;
      const T* m3 = m2 + n;
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) ob[j] += x0 * m0[j] + x1 * m1[j] + x2 * m2[j] + x3 * m3[j];
    }
    for (; r < k; ++r) {
      const T x = ib[r];
      const T* m = mat + r * n;
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) ob[j] += x * m[j];
    }
  }
}

// out (rows x n) += in (rows x k) @ mat^T, mat (n x k) row-major: dot products, four outputs
// per pass so each input vector is loaded a quarter as often. Needs no transposed copy.
template <typename T>
void accumulate_product_transposed(T* __restrict out, const T* __restrict in,
                                   const T* __restrict mat, int64_t rows, int64_t n, int64_t k) {
  for (int64_t b = 0; b < rows; ++b) {
    T* ob = out + b * n;
    const T* ib = in + b * k;
    int64_t m = 0;
    for (; m + 4 <= n; m += 4) {
      const T* m0 = mat + m * k;
      const T* m1 = m0 + k;
      const T* m2 = m1 + k;
      const T* m3 = m2 + k;
      T s0 = 0, s1 = 0, s2 = 0, s3 = 0;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
      for (int64_t j = 0; j < k; ++j) {
        s0 += ib[j] * m0[j];
        s1 += ib[j] * m1[j];
        s2 += ib[j] * m2[j];
        s3 += ib[j] * m3[j];
      }
      ob[m] += s0;
      ob[m + 1] += s1;
      ob[m + 2] += s2;
      ob[m + 3] += s3;
    }
    for (; m < n; ++m) {
      const T* mm = mat + m * k;
      T sum = 0;
#pragma omp simd reduction(+ : sum)
      for (int64_t j = 0; j < k; ++j) sum += ib[j] * mm[j];
      ob[m] += sum;
    }
  }
}

Layout make_layout(int64_t hidden, const std::vector<int64_t>& spec) {
  TORCH_CHECK(spec.size() == 7, "spec: g, h, input_gate, forget_gate, output_gate, coupled, peep");
  return Layout(hidden, spec[0], spec[1], spec[2], spec[3], spec[4], spec[5], spec[6]);
}

// K independent runs of one shape go through one call: the runs dimension K sits between time
// and batch, and each run has its own weights. A single network is K = 1.
//
// Each run's rows (T*B of them) in one product: (T, K, B, n) <-> (K, T*B, n).
torch::Tensor by_run(const torch::Tensor& a) {
  const int64_t T = a.size(0), K = a.size(1), B = a.size(2);
  return a.permute({1, 0, 2, 3}).reshape({K, T * B, a.size(3)});
}

torch::Tensor by_time(const torch::Tensor& a, int64_t T) {
  const int64_t K = a.size(0), B = a.size(1) / T;
  return a.view({K, T, B, a.size(2)}).permute({1, 0, 2, 3}).contiguous();
}

// x (T, K, B, I); w_ih (K, G*H, I); w_hh (K, G*H, H); bias (K, G*H); peep (K, P, H) or empty.
// Returns (y, c, activations), each (T, K, B, .).
std::vector<torch::Tensor> forward(torch::Tensor x, torch::Tensor w_ih, torch::Tensor w_hh,
                                   torch::Tensor bias, torch::Tensor peep,
                                   std::vector<int64_t> spec) {
  TORCH_CHECK(x.device().is_cpu() && x.is_contiguous(), "x must be a contiguous CPU tensor");
  TORCH_CHECK(x.dim() == 4 && w_ih.dim() == 3, "x is (T, K, B, I) and w_ih (K, G*H, I)");
  const int64_t T = x.size(0), K = x.size(1), B = x.size(2), H = w_hh.size(2);
  const Layout L = make_layout(H, spec);
  const int64_t row = L.blocks * H;
  TORCH_CHECK(w_ih.size(0) == K && w_ih.size(1) == row, "weight_ih has the wrong shape");
  auto acts = by_time(torch::baddbmm(bias.unsqueeze(1), by_run(x), w_ih.transpose(1, 2)), T);
  auto y = torch::empty({T, K, B, H}, x.options());
  auto c = torch::empty({T, K, B, H}, x.options());
  w_hh = w_hh.contiguous();
  peep = peep.contiguous();
  auto w_hh_t = w_hh.transpose(1, 2);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "spec_lstm_forward", [&] {
    using T_ = scalar_t;
    Rows<T_> s(H);
    const bool has_peep = peep.defined() && peep.numel();
    const T_* peep_data = has_peep ? peep.data_ptr<T_>() : nullptr;
    const int64_t peep_size = has_peep ? peep.size(1) * H : 0;
    const T_* w_data = w_hh.data_ptr<T_>();
    T_* a_data = acts.data_ptr<T_>();
    T_* c_data = c.data_ptr<T_>();
    T_* y_data = y.data_ptr<T_>();
    const int64_t rows = K * B;  // one step's rows, run by run
    // The gate arithmetic of runs [k0, k1) at step t.
    auto gates = [&](int64_t t, int64_t k0, int64_t k1) {
      for (int64_t kb = k0 * B; kb < k1 * B; ++kb) {
        const T_* c_prev = t > 0 ? c_data + ((t - 1) * rows + kb) * H : s.zeros.data();
        const T_* peep_k = peep_data ? peep_data + (kb / B) * peep_size : nullptr;
        forward_row<T_>(L, a_data + (t * rows + kb) * row, c_prev, c_data + (t * rows + kb) * H,
                        y_data + (t * rows + kb) * H, peep_k, s);
      }
    };
    if (B <= kSmallBatch) {
      // Run by run, so that each run's recurrent weights stay in the cache through its time
      // loop; step by step, all K runs' weights would stream through it at every step.
      for (int64_t k = 0; k < K; ++k) {
        for (int64_t t = 0; t < T; ++t) {
          if (t > 0) {
            accumulate_product_transposed<T_>(a_data + (t * K + k) * B * row,
                                              y_data + ((t - 1) * K + k) * B * H,
                                              w_data + k * row * H, B, row, H);
          }
          gates(t, k, k + 1);
        }
      }
    } else {
      for (int64_t t = 0; t < T; ++t) {
        if (t > 0 && K == 1) {  // a plain product: no batched-product dispatch
          acts[t][0].addmm_(y[t - 1][0], w_hh_t[0]);
        } else if (t > 0) {
          acts.select(0, t).baddbmm_(y.select(0, t - 1), w_hh_t);
        }
        gates(t, 0, K);
      }
    }
  });
  return {y, c, acts};
}

// Returns (dx or undefined, dw_ih, dw_hh, dbias, dpeep or undefined), shaped like the inputs.
std::vector<torch::Tensor> backward(torch::Tensor dy, torch::Tensor x, torch::Tensor w_ih,
                                    torch::Tensor w_hh, torch::Tensor peep, torch::Tensor y,
                                    torch::Tensor c, torch::Tensor acts,
                                    std::vector<int64_t> spec, bool need_dx) {
  dy = dy.contiguous();
  w_hh = w_hh.contiguous();
  peep = peep.contiguous();
  const int64_t T = x.size(0), K = x.size(1), B = x.size(2), H = w_hh.size(2);
  const Layout L = make_layout(H, spec);
  const int64_t row = L.blocks * H;
  const int64_t rows = K * B;
  auto dz = torch::empty({T, K, B, row}, x.options());
  auto dc = torch::zeros({K, B, H}, x.options());
  auto dy_t = torch::empty({K, B, H}, x.options());
  const bool has_peep = peep.defined() && peep.numel();
  auto dpeep = has_peep ? torch::zeros_like(peep) : torch::Tensor();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "spec_lstm_backward", [&] {
    using T_ = scalar_t;
    Rows<T_> s(H);
    const T_* peep_data = has_peep ? peep.data_ptr<T_>() : nullptr;
    T_* dpeep_data = has_peep ? dpeep.data_ptr<T_>() : nullptr;
    const int64_t peep_size = has_peep ? peep.size(1) * H : 0;
    const T_* w_data = w_hh.data_ptr<T_>();
    const T_* a_data = acts.data_ptr<T_>();
    const T_* c_data = c.data_ptr<T_>();
    T_* dz_data = dz.data_ptr<T_>();
    T_* dc_data = dc.data_ptr<T_>();
    T_* dyt_data = dy_t.data_ptr<T_>();
    const T_* dy_data = dy.data_ptr<T_>();
    // The gate arithmetic backward of runs [k0, k1) at step t, dy_t holding their dy.
    auto gates = [&](int64_t t, int64_t k0, int64_t k1) {
      for (int64_t kb = k0 * B; kb < k1 * B; ++kb) {
        const T_* c_prev = t > 0 ? c_data + ((t - 1) * rows + kb) * H : s.zeros.data();
        const int64_t peep_at = (kb / B) * peep_size;
        backward_row<T_>(L, a_data + (t * rows + kb) * row, c_prev, c_data + (t * rows + kb) * H,
                         dyt_data + kb * H, dc_data + kb * H, dz_data + (t * rows + kb) * row,
                         peep_data ? peep_data + peep_at : nullptr,
                         dpeep_data ? dpeep_data + peep_at : nullptr, s);
      }
    };
    if (B <= kSmallBatch) {  // run by run, as in the forward pass
      for (int64_t k = 0; k < K; ++k) {
        T_* dyt_k = dyt_data + k * B * H;
        for (int64_t t = T - 1; t >= 0; --t) {
          const T_* dy_k = dy_data + (t * K + k) * B * H;
          std::copy(dy_k, dy_k + B * H, dyt_k);
          if (t < T - 1) {
            accumulate_product<T_>(dyt_k, dz_data + ((t + 1) * K + k) * B * row,
                                   w_data + k * row * H, B, H, row);
          }
          gates(t, k, k + 1);
        }
      }
    } else {
      for (int64_t t = T - 1; t >= 0; --t) {
        if (t == T - 1) {
          dy_t.copy_(dy.select(0, t));
        } else if (K == 1) {
          auto out = dy_t[0];
          at::addmm_out(out, dy[t][0], dz[t + 1][0], w_hh[0]);
        } else {
          at::baddbmm_out(dy_t, dy.select(0, t), dz.select(0, t + 1), w_hh);
        }
        gates(t, 0, K);
      }
    }
  });
  auto dz_runs = by_run(dz);  // (K, T*B, G*H)
  auto dw_ih = dz_runs.transpose(1, 2).bmm(by_run(x));
  auto dw_hh = T > 1 ? by_run(dz.narrow(0, 1, T - 1)).transpose(1, 2).bmm(
                           by_run(y.narrow(0, 0, T - 1)))
                     : torch::zeros_like(w_hh);
  auto dbias = dz_runs.sum(1);
  auto dx = need_dx ? by_time(dz_runs.bmm(w_ih), T) : torch::Tensor();
  return {dx, dw_ih, dw_hh, dbias, dpeep};
}

}  // namespace lstmbench
