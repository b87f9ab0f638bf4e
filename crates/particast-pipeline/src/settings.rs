//! The settings layer.
//!
//! Defaults live in one place only: the `Default` of each settings struct ([`TrainConfig`]
//! here; [`crate::ScoreConfig`], [`crate::ForecastConfig`] and
//! [`particast_ingest::IngestOptions`] next to what they configure). What a user gives -- the
//! keys of a pipeline file's section, a `--config` file, command-line flags, keyword arguments
//! -- is an [`Overrides`]: values by their key names in files, layered ([`Overrides::merge`])
//! and applied in one place ([`Overrides::build`], [`Overrides::apply`]), which names the key
//! of a bad value and refuses unknown keys.

use particast_ingest::Weighting;
use particast_kernels::{Cell, Gate, Head, ModelConfig};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{PipelineError, Result};
use crate::inputs::{InputSpec, Scaling, Target, Transform};

/// Settings a user gave for one section (`train`, `score`, `forecast`, `input`, ...), keyed
/// by their names in files; everything absent keeps the default (or the base it is applied
/// to).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Overrides {
    section: String,
    entries: Map<String, Value>,
}

impl Overrides {
    /// No overrides for `section` (named in messages).
    pub fn new(section: &str) -> Self {
        Overrides {
            section: section.to_string(),
            entries: Map::new(),
        }
    }

    /// The keys of a table (a TOML section, a JSON object, a map), as overrides.
    pub fn from_table(section: &str, table: &impl Serialize) -> Result<Self> {
        match serde_json::to_value(table) {
            Ok(Value::Object(entries)) => Ok(Overrides {
                section: section.to_string(),
                entries,
            }),
            Ok(_) => Err(PipelineError::Setting {
                section: section.to_string(),
                key: None,
                message: "must be a table of keys".into(),
            }),
            Err(e) => Err(PipelineError::Setting {
                section: section.to_string(),
                key: None,
                message: e.to_string(),
            }),
        }
    }

    /// The section these overrides are for.
    pub fn section(&self) -> &str {
        &self.section
    }

    /// Whether no key is set.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The keys set, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// Sets `key` to `value` (in its serde form, as a file would write it).
    pub fn set(&mut self, key: &str, value: impl Serialize) -> &mut Self {
        // Serialising plain settings values (numbers, strings, lists, enums) cannot fail; a
        // value that cannot be written as JSON (a non-finite float) is passed as null, which
        // the settings struct then refuses with a message naming the key.
        let v = serde_json::to_value(value).unwrap_or(Value::Null);
        self.entries.insert(key.to_string(), v);
        self
    }

    /// Sets `key` when `value` is given.
    pub fn set_some<T: Serialize>(&mut self, key: &str, value: Option<T>) -> &mut Self {
        if let Some(v) = value {
            self.set(key, v);
        }
        self
    }

    /// Sets an `auto` knob when given: `Some(None)` is `"auto"`, `Some(Some(v))` the value.
    pub fn set_auto<T: Serialize>(&mut self, key: &str, value: Option<Option<T>>) -> &mut Self {
        match value {
            None => self,
            Some(None) => self.set(key, "auto"),
            Some(Some(v)) => self.set(key, v),
        }
    }

    /// Layers `over` on top: its keys win.
    pub fn merge(&mut self, over: Overrides) -> &mut Self {
        self.entries.extend(over.entries);
        self
    }

    /// Takes `key` out (a key the settings struct does not hold, such as a pipeline file's
    /// `path` or `model`), typed.
    pub fn take<T: DeserializeOwned>(&mut self, key: &str) -> Result<Option<T>> {
        match self.entries.remove(key) {
            None => Ok(None),
            Some(v) => serde_json::from_value(v)
                .map(Some)
                .map_err(|e| self.error(Some(key), e.to_string())),
        }
    }

    /// The settings: the defaults with these overrides.
    pub fn build<T: DeserializeOwned>(&self) -> Result<T> {
        self.decode(|entries| serde_json::from_value(Value::Object(entries)))
    }

    /// `base` with these overrides on top (the model's reading options with the command
    /// line's, say).
    pub fn apply<T: Serialize + DeserializeOwned>(&self, base: &T) -> Result<T> {
        let Value::Object(base) =
            serde_json::to_value(base).map_err(|e| self.error(None, e.to_string()))?
        else {
            return Err(self.error(None, "the base settings are not a table".into()));
        };
        self.decode(|entries| {
            let mut all = base.clone();
            all.extend(entries);
            serde_json::from_value(Value::Object(all))
        })
    }

    /// Decodes all entries; on failure, finds the first key that fails on its own, so the
    /// message names it.
    fn decode<T>(&self, f: impl Fn(Map<String, Value>) -> serde_json::Result<T>) -> Result<T> {
        f(self.entries.clone()).map_err(|e| {
            let culprit = self.entries.iter().find_map(|(k, v)| {
                let mut one = Map::new();
                one.insert(k.clone(), v.clone());
                f(one).err().map(|e| (k, e.to_string()))
            });
            match culprit {
                Some((_, why)) if why.contains("unknown field") => self.error(None, why),
                Some((k, why)) => self.error(Some(k), why),
                None => self.error(None, e.to_string()),
            }
        })
    }

    fn error(&self, key: Option<&str>, message: String) -> PipelineError {
        PipelineError::Setting {
            section: self.section.clone(),
            key: key.map(str::to_string),
            message,
        }
    }
}

/// `"auto"` or a value in pipeline files and JSON: `None` is auto.
pub(crate) mod auto {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Writes `None` as `"auto"`.
    pub fn serialize<S: Serializer, T: Serialize>(
        v: &Option<T>,
        s: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        match v {
            None => s.serialize_str("auto"),
            Some(v) => v.serialize(s),
        }
    }

    /// Reads `"auto"` as `None`, anything else as a value (with the value type's own error
    /// message: `invalid type: string "four", expected usize`).
    pub fn deserialize<'de, D: Deserializer<'de>, T: serde::de::DeserializeOwned>(
        d: D,
    ) -> std::result::Result<Option<T>, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        if v.as_str() == Some("auto") {
            return Ok(None);
        }
        serde_json::from_value(v)
            .map(Some)
            .map_err(D::Error::custom)
    }
}

/// Training settings. The recipe knobs (seasons, lags, transform, target, scaling, context,
/// hidden size and the training budget) are `None` by default, which means `auto`: decided
/// from the data by [`crate::recipe::plan`] at training time, printed and stored in the
/// model's `config.json`. The same struct serves the CLI, pipeline files (`"auto"` or an
/// absent key) and Rust.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Recurrent cell.
    pub cell: Cell,
    /// Emission head.
    pub head: Head,
    /// Mixture gate.
    pub gate: Gate,
    /// Hidden units (auto: 32, 40 for large panels).
    #[serde(with = "crate::settings::auto")]
    pub hidden: Option<usize>,
    /// Particles.
    pub particles: usize,
    /// Per-particle embedding size (0 for the note's exact form).
    pub embedding: usize,
    /// Learned transition noise during training.
    pub noise: bool,
    /// Seasons in steps (auto: from the frequency, kept when the data show them; empty:
    /// none).
    #[serde(with = "crate::settings::auto")]
    pub seasons: Option<Vec<usize>>,
    /// Target lags in steps, added to those of the input options (auto: 1 and the seasons).
    #[serde(with = "crate::settings::auto")]
    pub lags: Option<Vec<usize>>,
    /// Context steps per window (also the scale window).
    #[serde(with = "crate::settings::auto")]
    pub context: Option<usize>,
    /// Horizon steps per window; the last `horizon` steps of each series are held out for
    /// validation.
    pub horizon: usize,
    /// Windows per gradient step (auto: 64).
    #[serde(with = "crate::settings::auto")]
    pub batch_size: Option<usize>,
    /// Gradient steps per epoch (auto: from the windows available).
    #[serde(with = "crate::settings::auto")]
    pub batches_per_epoch: Option<usize>,
    /// Maximum epochs (auto: from the windows available).
    #[serde(with = "crate::settings::auto")]
    pub epochs: Option<usize>,
    /// Adam step size.
    pub lr: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
    /// Global gradient-norm clip.
    pub clip: f64,
    /// Stop after this many epochs without a better validation NLL.
    pub patience: usize,
    /// Multiply the learning rate by this after `lr_patience` epochs without improvement.
    pub lr_decay: f64,
    /// Epochs without improvement before the learning rate decays.
    pub lr_patience: usize,
    /// Smallest learning rate.
    pub min_lr: f64,
    /// Leading steps of each window without loss (the particles settle first).
    pub burn_in: usize,
    /// Seed of initialisation, window sampling and noise.
    pub seed: u64,
    /// Scaling rule (auto: seasonal differences at the target's season; a season of 0 means
    /// the recipe's).
    #[serde(with = "crate::settings::auto")]
    pub scaling: Option<Scaling>,
    /// What the emission models (auto: the change from one season ago, or from the previous
    /// step without a season; `seasonal_change` with season 0 means the recipe's season).
    #[serde(with = "crate::settings::auto")]
    pub target: Option<Target>,
    /// Transform of the values before scaling (auto: `log` when every training value is
    /// positive).
    #[serde(with = "crate::settings::auto")]
    pub transform: Option<Transform>,
    /// How training windows are spread over the series (auto: every series equally often).
    #[serde(with = "crate::settings::auto")]
    pub weighting: Option<Weighting>,
    /// Compare the recipe's alternatives on the validation split when the data are
    /// ambiguous (a season shown by some series only), keeping the better.
    pub select: bool,
    /// Floor of the emission scale (scaled units).
    pub sigma_floor: f64,
    /// Initial fixed-share rate.
    pub share_init: f64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            cell: Cell::Gru,
            head: Head::Gaussian,
            gate: Gate::Uniform,
            hidden: None,
            particles: 8,
            embedding: 4,
            noise: false,
            seasons: None,
            lags: None,
            context: None,
            horizon: 48,
            batch_size: None,
            batches_per_epoch: None,
            epochs: None,
            lr: 3e-3,
            weight_decay: 0.0,
            clip: 10.0,
            patience: 6,
            lr_decay: 0.5,
            lr_patience: 2,
            min_lr: 1e-5,
            burn_in: 0,
            seed: 42,
            scaling: None,
            target: None,
            transform: None,
            weighting: None,
            select: true,
            sigma_floor: 1e-3,
            share_init: 0.05,
        }
    }
}

impl TrainConfig {
    /// The pre-recipe defaults (mean |y| scaling, the level, no transform, no lags, context
    /// 168, 30 epochs of 50 steps of 64 windows, hidden 32, windows weighted by scale): for
    /// comparisons with the automatic recipe.
    pub fn classic() -> Self {
        TrainConfig {
            hidden: Some(32),
            seasons: Some(Vec::new()),
            lags: Some(Vec::new()),
            context: Some(168),
            batch_size: Some(64),
            batches_per_epoch: Some(50),
            epochs: Some(30),
            scaling: Some(Scaling::default()),
            target: Some(Target::Level),
            transform: Some(Transform::None),
            weighting: Some(Weighting::Scale),
            ..Default::default()
        }
    }
}

impl TrainConfig {
    /// Checks the settings the user gave (auto knobs are checked once decided).
    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(PipelineError::Config(m.into()));
        if self.horizon == 0 || self.context == Some(0) {
            return bad("context and horizon must be positive");
        }
        if [self.batch_size, self.batches_per_epoch, self.epochs].contains(&Some(0)) {
            return bad("batch_size, batches_per_epoch and epochs must be positive");
        }
        use crate::limits::{at_most, MAX_BATCH_SIZE, MAX_CONTEXT, MAX_HORIZON};
        if let Some(c) = self.context {
            at_most("context", c, MAX_CONTEXT, "")?;
        }
        at_most("horizon", self.horizon, MAX_HORIZON, "")?;
        if let Some(b) = self.batch_size {
            at_most("batch_size", b, MAX_BATCH_SIZE, "")?;
        }
        let max_dim = particast_kernels::ModelConfig::MAX_DIM;
        if let Some(h) = self.hidden {
            at_most("hidden", h, max_dim, "")?;
        }
        at_most("particles", self.particles, max_dim, "")?;
        at_most("embedding", self.embedding, max_dim, "")?;
        for &m in self
            .seasons
            .iter()
            .flatten()
            .chain(self.lags.iter().flatten())
        {
            at_most("a season or lag", m, crate::limits::MAX_CONTEXT, "")?;
        }
        let positive = |v: f64| v > 0.0 && v.is_finite();
        if !positive(self.lr) || !positive(self.clip) {
            return bad("lr and clip must be positive");
        }
        if !(self.lr_decay > 0.0 && self.lr_decay <= 1.0) {
            return bad("lr_decay must be in (0, 1]");
        }
        if let Some(t) = &self.transform {
            t.validate()?;
        }
        if let Some(s) = &self.scaling {
            if !matches!(s, Scaling::SeasonalDiff { season: 0, .. }) {
                s.validate()?;
            }
        }
        Ok(())
    }

    pub(crate) fn model_config(&self, spec: &InputSpec, hidden: usize) -> ModelConfig {
        ModelConfig {
            cell: self.cell,
            head: self.head,
            gate: self.gate,
            hidden,
            particles: self.particles,
            embedding: self.embedding,
            inputs: spec.n_inputs(),
            targets: spec.features.n_targets,
            noise: self.noise,
            sigma_floor: self.sigma_floor,
            share_init: self.share_init,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ScoreConfig;

    #[test]
    fn overrides_build_over_the_defaults_and_later_layers_win() {
        let mut file = Overrides::new("train");
        file.set("particles", 4).set("hidden", 16).set("lr", 0.01);
        let mut flags = Overrides::new("train");
        flags
            .set_some("hidden", Some(24))
            .set_some::<usize>("epochs", None)
            .set_auto::<Transform>("transform", Some(None))
            .set_auto("target", Some(Some(Target::Level)));
        file.merge(flags);
        let cfg: TrainConfig = file.build().unwrap();
        assert_eq!((cfg.particles, cfg.hidden, cfg.lr), (4, Some(24), 0.01));
        assert_eq!((cfg.epochs, cfg.transform), (None, None));
        assert_eq!(cfg.target, Some(Target::Level));
        // Everything not given is the library's default.
        let d = TrainConfig::default();
        assert_eq!((cfg.seed, cfg.clip, cfg.cell), (d.seed, d.clip, d.cell));
        assert_eq!(Overrides::new("train").build::<TrainConfig>().unwrap(), d);
    }

    #[test]
    fn bad_values_and_unknown_keys_are_named() {
        let mut o = Overrides::new("score");
        o.set("threshold", 0.5).set("smooth", "many");
        let e = o.build::<ScoreConfig>().unwrap_err().to_string();
        assert!(e.starts_with("[score] smooth: invalid type"), "{e}");
        let mut o = Overrides::new("score");
        o.set("treshold", 0.5);
        let e = o.build::<ScoreConfig>().unwrap_err().to_string();
        assert!(
            e.contains("[score]") && e.contains("unknown field `treshold`"),
            "{e}"
        );
        // A non-finite float cannot be written as a value: refused, naming the key.
        let mut o = Overrides::new("score");
        o.set("threshold", f64::NAN);
        let e = o.build::<ScoreConfig>().unwrap_err().to_string();
        assert!(e.starts_with("[score] threshold:"), "{e}");
    }

    #[test]
    fn apply_keeps_the_base_where_nothing_is_given_and_take_removes_keys() {
        let base = ScoreConfig {
            threshold: 0.8,
            smooth: 12,
            ..Default::default()
        };
        let mut o = Overrides::new("score");
        o.set("smooth", 3).set("output", "s.parquet");
        let out: Option<String> = o.take("output").unwrap();
        assert_eq!(out.as_deref(), Some("s.parquet"));
        assert_eq!(o.keys().collect::<Vec<_>>(), vec!["smooth"]);
        let cfg = o.apply(&base).unwrap();
        assert_eq!((cfg.threshold, cfg.smooth), (0.8, 3));
        let e = o.take::<usize>("smooth");
        assert_eq!(e.unwrap(), Some(3));
        assert!(o.is_empty());
    }
}
