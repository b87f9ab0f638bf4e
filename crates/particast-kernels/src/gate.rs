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
    let ll = logsumexp(&s[..l]);
    for li in 0..l {
        post[li] = (s[li] - ll).exp_fast();
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
