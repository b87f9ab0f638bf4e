//! The mixture gate: the predictive log-likelihood of an observation under the particles'
//! weights, how the weights move after it ([`Gate`]: `uniform` stays uniform, `bayes` is the
//! posterior, `fixed-share` mixes the posterior with a share `a` of the uniform), and the
//! exact adjoints of both for backpropagation.

use crate::model::Gate;
use crate::real::{logsumexp, Real};

/// One observed step of one window: `lw` holds the current log-weights and receives the next
/// step's; `lp` the particles' log densities of the observation. Writes the posterior
/// `post = exp(lw + lp - ll)` and returns `ll = log sum exp(lw + lp)`, the observation's
/// log-likelihood under the mixture. `s` is scratch of L values.
pub(crate) fn observe<T: Real>(
    gate: Gate,
    share: T,
    lw: &mut [T],
    lp: &[T],
    s: &mut [T],
    post: &mut [T],
) -> T {
    let l = lw.len();
    for li in 0..l {
        s[li] = lw[li] + lp[li];
    }
    // One particle: the mixture is that particle (logsumexp and the posterior of one finite
    // value are exactly the value and 1; the general path gives the same bits).
    let single = l == 1 && s[0].is_finite();
    let ll = if single { s[0] } else { logsumexp(&s[..l]) };
    if single {
        post[0] = T::one();
    } else {
        for li in 0..l {
            post[li] = (s[li] - ll).exp_fast();
        }
    }
    let log_l = T::c((l as f64).ln());
    for li in 0..l {
        lw[li] = match gate {
            Gate::Uniform => -log_l,
            Gate::Bayes => s[li] - ll,
            Gate::FixedShare => ((T::one() - share) * post[li] + share / T::c(l as f64)).ln_fast(),
        };
    }
    ll
}

/// The adjoint of [`observe`] for one observed step whose loss weight is `coeff`: from the
/// posterior `pi` and `dn`, the adjoint of the next log-weights (replaced by that of the
/// current ones), writes the adjoints of the log densities into `dlp` and accumulates the share
/// rate's into `da`. `dpi` is scratch of L values.
#[allow(clippy::too_many_arguments)]
pub(crate) fn observe_backward<T: Real>(
    gate: Gate,
    share: T,
    pi: &[T],
    coeff: T,
    dn: &mut [T],
    dlp: &mut [T],
    dpi: &mut [T],
    da: &mut T,
) {
    let l = pi.len();
    let a = share;
    let inv_l = T::one() / T::c(l as f64);
    for li in 0..l {
        dlp[li] = -coeff * pi[li];
    }
    match gate {
        Gate::Uniform => {}
        Gate::Bayes => {
            let sum: T = dn.iter().copied().sum();
            for li in 0..l {
                dlp[li] += dn[li] - pi[li] * sum;
            }
        }
        Gate::FixedShare => {
            let mut inner = T::zero();
            for li in 0..l {
                let q = (T::one() - a) * pi[li] + a * inv_l;
                let dq = dn[li] / q;
                dpi[li] = (T::one() - a) * dq;
                *da += dq * (inv_l - pi[li]);
                inner += pi[li] * dpi[li];
            }
            for li in 0..l {
                dlp[li] += pi[li] * (dpi[li] - inner);
            }
        }
    }
    for li in 0..l {
        dn[li] = if gate == Gate::Uniform {
            T::zero()
        } else {
            dlp[li]
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_particle_matches_the_general_formulas_bit_for_bit() {
        for gate in [Gate::Uniform, Gate::Bayes, Gate::FixedShare] {
            for (w, p) in [(0.0f32, -1.3f32), (-0.2, 4.5), (0.0, -80.0), (0.0, 0.0)] {
                let (mut lw, mut s, mut post) = ([w], [0.0f32], [0.0f32]);
                let ll = observe(gate, 0.1, &mut lw, &[p], &mut s, &mut post);
                let sum = w + p;
                let want_ll = logsumexp(&[sum]);
                assert_eq!(ll.to_bits(), want_ll.to_bits(), "{gate:?} {w} {p}");
                assert_eq!(post[0].to_bits(), (sum - want_ll).exp_fast().to_bits());
                let want_w = match gate {
                    Gate::Uniform => -0.0f32,
                    Gate::Bayes => sum - want_ll,
                    Gate::FixedShare => ((1.0f32 - 0.1) * post[0] + 0.1 / 1.0).ln_fast(),
                };
                assert_eq!(lw[0].to_bits(), want_w.to_bits(), "{gate:?}");
            }
        }
    }
}
