//! A list of numbers as users like to write it: explicitly (`[0.1, 0.2]`),
//! evenly spaced (`{"linspace": {"start": 0.01, "stop": 0.5, "num": 80}}`),
//! or log-spaced (`{"geomspace": {"start": 1e-6, "stop": 1, "num": 25}}`).
//! The written form is kept (and hashed) as written; [`Values::expand`]
//! produces the numbers.

use ptft_engine::ParamError;
use serde::{Deserialize, Deserializer, Serialize};

/// Largest grid a single parameter may expand to; beyond this a typo (an
/// extra zero in `num`) would silently eat memory and hours.
pub const MAX_POINTS: usize = 1_000_000;

/// A byte count as a person reads it ("8.0 GB", "640 MB"), for the memory
/// estimates in validation messages: an oversized request is refused with
/// what it would have cost, so the user sees how far over it is.
pub fn human_bytes(bytes: f64) -> String {
    if bytes >= 1e15 {
        return format!("{bytes:.1e} bytes");
    }
    const UNITS: [(f64, &str); 4] = [(1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB")];
    for (scale, unit) in UNITS {
        if bytes >= scale {
            let v = bytes / scale;
            return if v >= 100.0 {
                format!("{v:.0} {unit}")
            } else {
                format!("{v:.1} {unit}")
            };
        }
    }
    format!("{bytes:.0} bytes")
}

/// The refusal for a grid of `len` values (`len > MAX_POINTS`), with what
/// just listing them would cost.
fn too_many(field: &str, what: &str, len: usize) -> ParamError {
    let mut e = ParamError::range(format!("{field}{what}"), len, &format!("[1, {MAX_POINTS}]"));
    e.message.push_str(&format!(
        ": {len} values take about {} just to list (8 bytes each), and each one is at least one row of the output; split a larger grid with a sweep",
        human_bytes(len as f64 * 8.0)
    ));
    e
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Values {
    List(Vec<f64>),
    Spaced(Spacing),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Spacing {
    Linspace { start: f64, stop: f64, num: usize },
    Geomspace { start: f64, stop: f64, num: usize },
}

impl<'de> Deserialize<'de> for Values {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let v = serde_json::Value::deserialize(d)?;
        const FORMS: &str = "expected a list of numbers like [0.1, 0.2], or {\"linspace\": {\"start\": 0.01, \"stop\": 0.5, \"num\": 80}}, or {\"geomspace\": {\"start\": 1e-6, \"stop\": 1, \"num\": 25}}";
        match &v {
            serde_json::Value::Array(_) => serde_json::from_value::<Vec<f64>>(v)
                .map(Values::List)
                .map_err(|e| D::Error::custom(format!("{e}; {FORMS}"))),
            serde_json::Value::Number(n) => Ok(Values::List(vec![n
                .as_f64()
                .ok_or_else(|| D::Error::custom(FORMS))?])),
            serde_json::Value::Object(_) => serde_json::from_value::<Spacing>(v)
                .map(Values::Spaced)
                .map_err(|e| D::Error::custom(format!("{e}; {FORMS}"))),
            _ => Err(D::Error::custom(FORMS)),
        }
    }
}

impl Values {
    pub fn linspace(start: f64, stop: f64, num: usize) -> Self {
        Values::Spaced(Spacing::Linspace { start, stop, num })
    }

    pub fn geomspace(start: f64, stop: f64, num: usize) -> Self {
        Values::Spaced(Spacing::Geomspace { start, stop, num })
    }

    /// The numbers, or an error naming `field` and what is valid.
    pub fn expand(&self, field: &str) -> Result<Vec<f64>, ParamError> {
        let out = match self {
            Values::List(v) => v.clone(),
            Values::Spaced(s) => {
                let (start, stop, num, geom) = match *s {
                    Spacing::Linspace { start, stop, num } => (start, stop, num, false),
                    Spacing::Geomspace { start, stop, num } => (start, stop, num, true),
                };
                if !start.is_finite() || !stop.is_finite() {
                    return Err(ParamError::new(
                        field,
                        format!("{field}: start and stop must be finite numbers"),
                    ));
                }
                if num == 0 {
                    return Err(ParamError::range(
                        format!("{field}.num"),
                        num,
                        &format!("[1, {MAX_POINTS}]"),
                    ));
                }
                // Refused before anything is allocated.
                if num > MAX_POINTS {
                    return Err(too_many(field, ".num", num));
                }
                if geom && (start <= 0.0 || stop <= 0.0) {
                    return Err(ParamError::new(
                        field,
                        format!("{field}: geomspace needs start > 0 and stop > 0 (got {start}, {stop}); use linspace or a list for zero or negative values"),
                    ));
                }
                (0..num)
                    .map(|i| {
                        let t = if num == 1 {
                            0.0
                        } else {
                            i as f64 / (num - 1) as f64
                        };
                        if geom {
                            (start.ln() + t * (stop.ln() - start.ln())).exp()
                        } else {
                            start + t * (stop - start)
                        }
                    })
                    .collect()
            }
        };
        if out.is_empty() {
            return Err(ParamError::new(
                field,
                format!("{field} is empty; give at least one value"),
            ));
        }
        if out.len() > MAX_POINTS {
            return Err(too_many(field, " (length)", out.len()));
        }
        if let Some((i, v)) = out.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(ParamError::new(
                field,
                format!("{field}[{i}] = {v} is not finite"),
            ));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_parse_and_expand() {
        let v: Values =
            serde_json::from_str(r#"{"linspace": {"start": 0.01, "stop": 0.5, "num": 80}}"#)
                .unwrap();
        let x = v.expand("alpha").unwrap();
        assert_eq!(x.len(), 80);
        assert_eq!(x[0], 0.01);
        assert!((x[79] - 0.5).abs() < 1e-15);
        let g: Values =
            serde_json::from_str(r#"{"geomspace": {"start": 1e-6, "stop": 1, "num": 7}}"#).unwrap();
        let y = g.expand("c").unwrap();
        assert!((y[3] / 1e-3 - 1.0).abs() < 1e-12);
        let l: Values = serde_json::from_str("[1, 2.5]").unwrap();
        assert_eq!(l.expand("b").unwrap(), vec![1.0, 2.5]);
    }

    #[test]
    fn bad_forms_say_what_is_valid() {
        let e = serde_json::from_str::<Values>(r#"{"linspace": {"start": 0}}"#).unwrap_err();
        assert!(e.to_string().contains("expected a list"), "{e}");
        let e = Values::List(vec![]).expand("alpha").unwrap_err();
        assert!(e.message.contains("empty"));
        let e = Values::geomspace(0.0, 1.0, 3).expand("c").unwrap_err();
        assert!(e.message.contains("start > 0"));
        let e = Values::linspace(0.0, 1.0, 0).expand("alpha").unwrap_err();
        assert_eq!(e.field, "alpha.num");
        let e = Values::linspace(0.0, 1.0, 1_000_000_000)
            .expand("alpha")
            .unwrap_err();
        assert_eq!(e.field, "alpha.num");
        assert!(e.message.contains("[1, 1000000]"), "{}", e.message);
        assert!(e.message.contains("8.0 GB"), "{}", e.message);
    }

    #[test]
    fn byte_counts_read_naturally() {
        assert_eq!(human_bytes(8e9), "8.0 GB");
        assert_eq!(human_bytes(6.4e8), "640 MB");
        assert_eq!(human_bytes(1.5e13), "15.0 TB");
        assert_eq!(human_bytes(12.0), "12 bytes");
        assert_eq!(human_bytes(4e18), "4.0e18 bytes");
    }
}
