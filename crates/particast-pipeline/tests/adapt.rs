//! Online adaptation while scoring (`ScoreConfig::adapt`): causal, incremental = one pass bit
//! for bit through a state file, the same with one or two threads, and it learns (after a level
//! shift the adapted model's NLL comes down further than the frozen one's).

use particast_ingest::{Dataset, IngestOptions, PreparedSeries, Source};
use particast_pipeline::*;
use std::path::PathBuf;

fn taxi_model() -> (Dataset, TrainedModel, tempfile::TempDir) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/nab/realKnownCause/nyc_taxi.csv");
    let opts = IngestOptions {
        id_from_path: true,
        time_col: "timestamp".into(),
        target_cols: vec!["value".into()],
        lags: vec![48],
        ..Default::default()
    };
    let data = Dataset::read(Source::path(path), &opts).unwrap();
    let cfg = TrainConfig {
        hidden: Some(16),
        particles: 4,
        context: Some(48),
        horizon: 24,
        batch_size: Some(16),
        batches_per_epoch: Some(10),
        epochs: Some(2),
        lr: 5e-3,
        seed: 3,
        ..TrainConfig::classic()
    };
    let dir = tempfile::tempdir().unwrap();
    let mut head = data.clone();
    head.series = data.series.iter().map(|s| s.head(2000)).collect();
    let model = train(&head, &opts, &cfg, dir.path(), false, &mut Silent).unwrap();
    (data, model, dir)
}

fn adapting() -> ScoreConfig {
    // pipelines/nab.toml's kind of recipe (surprise, novelty, adaptation with a memory), with
    // shorter windows and larger steps so that updates matter within a short test.
    ScoreConfig {
        method: AnomalyMethod::Surprise,
        long_window: 500,
        smooth: 20,
        novelty: Some(0.05),
        chunk: 700,
        adapt: 96,
        adapt_lr: 1e-3,
        adapt_windows: 2,
        adapt_memory: 200,
        ..Default::default()
    }
}

/// Steps `from..` of `s` as new data.
fn tail_of(s: &PreparedSeries, from: usize) -> PreparedSeries {
    let mut rest = s.clone();
    rest.values = s.values[from..].to_vec();
    rest.mask = s.mask[from..].to_vec();
    rest.present = s.present[from..].to_vec();
    rest.axis.start = s.timestamp(from as i64);
    rest.stats.len = s.len() - from;
    rest.stats.first_ds = s.timestamp(from as i64);
    rest
}

fn bits(v: &[Option<f64>]) -> Vec<Option<u64>> {
    v.iter().map(|x| x.map(f64::to_bits)).collect()
}

#[test]
fn adaptation_is_causal_and_incremental_scoring_equals_one_pass() {
    let (data, model, dir) = taxi_model();
    let s = &data.series[0];
    for params in [AdaptParams::All, AdaptParams::Head] {
        let cfg = ScoreConfig {
            adapt_params: params,
            ..adapting()
        };
        let (whole, end) = score_series(&model, std::slice::from_ref(s), &cfg)
            .unwrap()
            .remove(0);
        assert_eq!(end.adapted.len(), model.model.params.len());
        assert_ne!(
            end.adapted, model.model.params,
            "{params:?}: nothing learned"
        );
        // Adaptation changes the scores from the first update (step 96) on.
        let (frozen, _) = score_series(
            &model,
            std::slice::from_ref(s),
            &ScoreConfig {
                adapt: 0,
                ..cfg.clone()
            },
        )
        .unwrap()
        .remove(0);
        assert_eq!(bits(&whole.nll[..96]), bits(&frozen.nll[..96]));
        assert_ne!(whole.nll[96], frozen.nll[96]);
        if params == AdaptParams::Head {
            let range = |n: &str| model.model.layout.get(n).unwrap().range();
            for (i, (a, b)) in end.adapted.iter().zip(&model.model.params).enumerate() {
                if !range("head.w").contains(&i) && !range("head.b").contains(&i) {
                    assert_eq!(a.to_bits(), b.to_bits(), "weight {i} is not the head's");
                }
            }
        }
        // Causal: the scores of a prefix do not change when later data is appended.
        let (prefix, _) = score_series(&model, &[s.head(5000)], &cfg)
            .unwrap()
            .remove(0);
        assert_eq!(bits(&prefix.nll), bits(&whole.nll[..5000]));
        assert_eq!(prefix.anomaly, whole.anomaly[..5000]);
        // Incremental through a state file, cut between updates and at one.
        for cut in [6000, 96 * 60] {
            let (first, state) = score_series(&model, &[s.head(cut)], &cfg)
                .unwrap()
                .remove(0);
            let path = dir.path().join("state.parquet");
            save_states(std::slice::from_ref(&state), &path).unwrap();
            let mut state = load_states(&path).unwrap().remove(0);
            assert_eq!(state.adapted.len(), model.model.params.len());
            check_state(&model, &state).unwrap();
            let second = score_continued(&model, &mut state, &tail_of(s, cut), &cfg).unwrap();
            let joined: Vec<Option<f64>> =
                first.nll.iter().chain(second.nll.iter()).copied().collect();
            assert_eq!(bits(&joined), bits(&whole.nll), "{params:?} cut {cut}");
            let an: Vec<Option<f64>> = first
                .anomaly
                .iter()
                .chain(second.anomaly.iter())
                .copied()
                .collect();
            assert_eq!(an, whole.anomaly);
            assert_eq!(state.adapted, end.adapted);
        }
    }
}

#[test]
fn adaptation_gives_the_same_bits_with_one_or_two_threads() {
    let (data, model, _dir) = taxi_model();
    let s = &data.series[0];
    let series = vec![s.clone(), s.head(7000), tail_of(s, 3000)];
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| score_series(&model, &series, &adapting()).unwrap())
    };
    let (one, two) = (run(1), run(2));
    for ((a, sa), (b, sb)) in one.iter().zip(&two) {
        assert_eq!(bits(&a.nll), bits(&b.nll));
        assert_eq!(bits(&a.anomaly), bits(&b.anomaly));
        assert_eq!(sa.adapted, sb.adapted);
    }
}

#[test]
fn after_a_level_shift_the_adapted_model_recovers_further() {
    let (data, model, _dir) = taxi_model();
    let mut s = data.series[0].head(8000);
    // The demand doubles from step 4000 on.
    for v in &mut s.values[4000..] {
        *v *= 2.0;
    }
    let mean_nll = |cfg: &ScoreConfig| {
        let (scores, _) = score_series(&model, std::slice::from_ref(&s), cfg)
            .unwrap()
            .remove(0);
        let late: Vec<f64> = scores.nll[6000..].iter().flatten().copied().collect();
        assert!(late.iter().all(|v| v.is_finite()));
        late.iter().sum::<f64>() / late.len() as f64
    };
    let frozen = mean_nll(&ScoreConfig::default());
    let adapted = mean_nll(&ScoreConfig {
        adapt: 48,
        adapt_lr: 3e-3,
        adapt_steps: 2,
        ..Default::default()
    });
    assert!(
        adapted < frozen - 0.05,
        "mean NLL after the shift: adapted {adapted}, frozen {frozen}"
    );
}
