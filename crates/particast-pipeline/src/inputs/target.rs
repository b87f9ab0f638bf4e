//! What the network's emission models ([`Target`]): the level, or the change from one season
//! (or one step) before.

use serde::{Deserialize, Serialize};

/// What the network's emission models at step t, in model units `x = (y - loc) / scale`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Target {
    /// The level `x[t]` itself.
    #[default]
    Level,
    /// The change from one season ago, `x[t] - x[t - season]`: the network predicts a
    /// correction to the seasonal-naive forecast, so that a network that knows nothing still
    /// forecasts as well as seasonal naive. The season must be one of the input lags. A step
    /// whose value one season ago is missing has no target (in training and in scoring); a
    /// forecast whose seasonal reference is missing falls back to the latest observed value a
    /// whole number of seasons earlier, then to the location.
    SeasonalChange {
        /// Season m in steps (24 for hourly data with a daily cycle).
        season: usize,
    },
}

impl Target {
    /// The season whose lag the target subtracts, if any.
    pub fn season(&self) -> Option<usize> {
        match *self {
            Target::Level => None,
            Target::SeasonalChange { season } => Some(season),
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Level => write!(f, "the level"),
            Target::SeasonalChange { season: 1 } => write!(f, "the change from the previous step"),
            Target::SeasonalChange { season } => {
                write!(f, "the change from {season} steps before")
            }
        }
    }
}

impl std::str::FromStr for Target {
    type Err = String;
    /// The words of the command line: `level`, `change` (from the previous step) or
    /// `seasonal` (from one season before: the recipe's, or `--season`'s, first season).
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "level" => Ok(Target::Level),
            "change" => Ok(Target::SeasonalChange { season: 1 }),
            // Season 0: the recipe's first season.
            "seasonal" => Ok(Target::SeasonalChange { season: 0 }),
            _ => Err(format!("`{s}`: expected level, change or seasonal")),
        }
    }
}
