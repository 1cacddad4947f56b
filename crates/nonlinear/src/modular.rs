//! Modular-arithmetic pretraining → fine-tuning: a second, small nonlinear
//! check of the theory's scale knobs (paper v2), cheap enough to run on a CPU.
//!
//! # Tasks
//!
//! Every pair `(a, b)` in `Z_p × Z_p` (`p` prime) is one example; the model
//! reads the three tokens `a`, `b`, `=` and predicts a residue in `Z_p`.
//!
//! * Pretraining: `(a + b) mod p`.
//! * Fine-tuning, chosen so that both *shared* and *new* features occur:
//!   * `(a − b) mod p` — networks that learn modular addition represent the
//!     residues by Fourier features `cos(2πka/p)`, `sin(2πka/p)` and compute
//!     the sum through trigonometric product identities. Subtraction is
//!     addition of `−b`, whose Fourier features are those of `b` with the sine
//!     flipped, so the embedding learned for addition can be *reused*: the
//!     fine-tuning task shares features with the pretraining task.
//!   * `(a · b) mod p` — multiplication is addition of discrete logarithms
//!     (`Z_p^*` is cyclic), so its natural features are Fourier features of
//!     `log_g a`, a permutation of the residues that scrambles the additive
//!     Fourier basis (and `0` has no logarithm at all). The additive
//!     embedding is of little use: fine-tuning must learn *new* features.
//!
//! Comparing how much the pretrained representation moves under the knobs on
//! `Sub` (feature reuse) versus `Mul` (feature learning) is the check.
//!
//! # Model
//!
//! A one-block transformer (candle-nn, `f32`, CPU): token embedding (`p + 1`
//! tokens), learned positional embedding (3 positions), multi-head
//! self-attention and a ReLU MLP with residual connections (no LayerNorm, so
//! the knobs' scale is not normalised away), and an unembedding to `p` logits
//! read at the last (`=`) position. Parameter names have the top-level
//! prefixes `embed`, `pos`, `block` and `head`, so the knobs of
//! [`crate::knobs`] apply: relative scale is
//! `scale_at_init(&vm, &["embed", "pos"], f)`, absolute scale is
//! `scale_all(&vm, f)`, readout scale is `rescale_head(&vm, "head", f)`.
//!
//! # Determinism
//!
//! candle 0.11 cannot seed its CPU RNG (`Device::Cpu.set_seed` fails), so the
//! parameters are filled from an inline seeded xorshift generator
//! ([`init_params`]) after the model is built; the split uses the same
//! generator. Full-batch AdamW is then deterministic given the seed.

use candle_core::{DType, Device, IndexOp, Module, Tensor, D};
use candle_nn::{AdamW, Embedding, Linear, Optimizer, ParamsAdamW, VarBuilder, VarMap};

/// Errors of the modular-arithmetic experiment.
#[derive(Debug, thiserror::Error)]
pub enum ModError {
    #[error("modulus p = {p} is invalid, expected a prime >= 2 (and < 65536)")]
    NotPrime { p: usize },
    #[error("train fraction {frac} leaves an empty train or test set of the {n} examples, expected 0 < frac < 1 with both sets non-empty")]
    BadFraction { frac: f64, n: usize },
    #[error("model config: {0}")]
    BadConfig(String),
    #[error("tensor operation failed: {0}")]
    Candle(#[from] candle_core::Error),
}

type Result<T> = std::result::Result<T, ModError>;

/// The arithmetic tasks on `Z_p`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModTask {
    /// `(a + b) mod p` (pretraining).
    Add,
    /// `(a - b) mod p` (fine-tuning, shared features).
    Sub,
    /// `(a * b) mod p` (fine-tuning, new features).
    Mul,
}

impl ModTask {
    /// The label of `(a, b)`, for `a, b < p`.
    pub fn apply(self, a: usize, b: usize, p: usize) -> usize {
        match self {
            ModTask::Add => (a + b) % p,
            ModTask::Sub => (a + p - b) % p,
            ModTask::Mul => (a * b) % p,
        }
    }

    /// Lower-case name, for records.
    pub fn name(self) -> &'static str {
        match self {
            ModTask::Add => "add",
            ModTask::Sub => "sub",
            ModTask::Mul => "mul",
        }
    }
}

/// One example: operands and label, all in `0..p`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Example {
    pub a: u32,
    pub b: u32,
    pub label: u32,
}

fn check_prime(p: usize) -> Result<()> {
    let prime = (2..65536).contains(&p) && (2..).take_while(|d| d * d <= p).all(|d| p % d != 0);
    if !prime {
        return Err(ModError::NotPrime { p });
    }
    Ok(())
}

/// The full table of `task` on `Z_p × Z_p`, in row-major order of `(a, b)`
/// (`p²` examples).
pub fn table(task: ModTask, p: usize) -> Result<Vec<Example>> {
    check_prime(p)?;
    let mut out = Vec::with_capacity(p * p);
    for a in 0..p {
        for b in 0..p {
            out.push(Example {
                a: a as u32,
                b: b as u32,
                label: task.apply(a, b, p) as u32,
            });
        }
    }
    Ok(out)
}

/// Inline xorshift64* generator seeded through splitmix64 (so nearby seeds
/// give unrelated streams, and seed 0 is valid).
#[derive(Debug, Clone)]
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        XorShift(if z == 0 { 0x2545_F491_4F6C_DD1D } else { z })
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `[0, 1)` with 53 bits.
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform index in `0..n` (`n > 0`; modulo bias is negligible here).
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform(); // (0, 1]
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// Seeded split into (train, test): a Fisher–Yates shuffle, then the first
/// `round(frac · n)` examples are the training set. Both sets must be
/// non-empty.
pub fn split(examples: &[Example], frac: f64, seed: u64) -> Result<(Vec<Example>, Vec<Example>)> {
    let n = examples.len();
    let n_train = (frac * n as f64).round();
    if !(frac.is_finite() && n_train >= 1.0 && n_train < n as f64) {
        return Err(ModError::BadFraction { frac, n });
    }
    let mut v = examples.to_vec();
    let mut rng = XorShift::new(seed);
    for i in (1..n).rev() {
        v.swap(i, rng.below(i + 1));
    }
    let test = v.split_off(n_train as usize);
    Ok((v, test))
}

/// Shape of the one-block transformer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelConfig {
    /// The modulus (prime); the vocabulary is `p + 1` tokens.
    pub p: usize,
    pub d_model: usize,
    /// Must divide `d_model`.
    pub n_heads: usize,
    pub d_mlp: usize,
}

impl ModelConfig {
    /// Defaults for modulus `p`: `d_model` 128, 4 heads, `d_mlp` 512.
    pub fn new(p: usize) -> Self {
        ModelConfig {
            p,
            d_model: 128,
            n_heads: 4,
            d_mlp: 512,
        }
    }

    fn validate(&self) -> Result<()> {
        check_prime(self.p)?;
        if self.d_model == 0 || self.n_heads == 0 || self.d_mlp == 0 {
            return Err(ModError::BadConfig(format!(
                "d_model {}, n_heads {}, d_mlp {}: expected all > 0",
                self.d_model, self.n_heads, self.d_mlp
            )));
        }
        if self.d_model % self.n_heads != 0 {
            return Err(ModError::BadConfig(format!(
                "n_heads {} does not divide d_model {}",
                self.n_heads, self.d_model
            )));
        }
        Ok(())
    }
}

/// The one-block transformer; its parameters live in a `VarMap` under
/// `embed`, `pos`, `block.attn.{q,k,v,o}`, `block.mlp.{fc1,fc2}` and `head`.
#[derive(Debug, Clone)]
pub struct ModModel {
    cfg: ModelConfig,
    embed: Embedding,
    pos: Tensor,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    fc1: Linear,
    fc2: Linear,
    head: Linear,
}

impl ModModel {
    /// Builds the model on `varmap` (CPU, f32). Existing variables of the
    /// right shapes (e.g. after pretraining) are reused; missing ones are
    /// created with candle's default (unseeded) init — call [`init_params`]
    /// for a seeded one.
    pub fn new(varmap: &VarMap, cfg: ModelConfig) -> Result<Self> {
        cfg.validate()?;
        let vb = VarBuilder::from_varmap(varmap, DType::F32, &Device::Cpu);
        let d = cfg.d_model;
        let embed = candle_nn::embedding(cfg.p + 1, d, vb.pp("embed"))?;
        let pos = vb.pp("pos").get_with_hints(
            (3, d),
            "weight",
            candle_nn::Init::Randn {
                mean: 0.0,
                stdev: 1.0,
            },
        )?;
        let a = vb.pp("block").pp("attn");
        let q = candle_nn::linear_no_bias(d, d, a.pp("q"))?;
        let k = candle_nn::linear_no_bias(d, d, a.pp("k"))?;
        let v = candle_nn::linear_no_bias(d, d, a.pp("v"))?;
        let o = candle_nn::linear_no_bias(d, d, a.pp("o"))?;
        let m = vb.pp("block").pp("mlp");
        let fc1 = candle_nn::linear(d, cfg.d_mlp, m.pp("fc1"))?;
        let fc2 = candle_nn::linear(cfg.d_mlp, d, m.pp("fc2"))?;
        let head = candle_nn::linear(d, cfg.p, vb.pp("head"))?;
        Ok(ModModel {
            cfg,
            embed,
            pos,
            q,
            k,
            v,
            o,
            fc1,
            fc2,
            head,
        })
    }

    pub fn config(&self) -> ModelConfig {
        self.cfg
    }

    /// Residual stream at the last (`=`) position, `[n, d_model]`, for
    /// tokens `[n, 3]` (u32) — the representation the metrics compare.
    pub fn features(&self, tokens: &Tensor) -> Result<Tensor> {
        let (n, t) = tokens.dims2()?;
        let (d, h) = (self.cfg.d_model, self.cfg.n_heads);
        let dh = d / h;
        let x = self.embed.forward(tokens)?.broadcast_add(&self.pos)?; // [n, 3, d]
        let heads = |lin: &Linear| -> candle_core::Result<Tensor> {
            lin.forward(&x)?
                .reshape((n, t, h, dh))?
                .transpose(1, 2)?
                .contiguous()
        };
        let (q, k, v) = (heads(&self.q)?, heads(&self.k)?, heads(&self.v)?); // [n, h, 3, dh]
        let scores = (q.matmul(&k.transpose(2, 3)?.contiguous()?)? / (dh as f64).sqrt())?;
        let att = candle_nn::ops::softmax_last_dim(&scores)?.matmul(&v)?; // [n, h, 3, dh]
        let att = att.transpose(1, 2)?.contiguous()?.reshape((n, t, d))?;
        let x = (x + self.o.forward(&att)?)?;
        let x = (&x + self.fc2.forward(&self.fc1.forward(&x)?.relu()?)?)?;
        Ok(x.i((.., t - 1, ..))?)
    }

    /// Logits `[n, p]` for tokens `[n, 3]` (u32).
    pub fn forward(&self, tokens: &Tensor) -> Result<Tensor> {
        Ok(self.head.forward(&self.features(tokens)?)?)
    }
}

/// Overwrites every parameter of `varmap` from a seeded xorshift stream, in
/// sorted name order: matrices (rank ≥ 2) get `N(0, 1/cols)` entries (`cols`
/// the last dimension: fan-in for linear weights, width for embeddings),
/// vectors (biases) get zeros. Deterministic given `seed`.
pub fn init_params(varmap: &VarMap, seed: u64) -> Result<()> {
    let mut vars: Vec<(String, candle_core::Var)> = {
        let data = varmap
            .data()
            .lock()
            .map_err(|_| ModError::BadConfig("VarMap lock poisoned".into()))?;
        data.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    };
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    let mut rng = XorShift::new(seed);
    for (_, var) in vars {
        let shape = var.shape().clone();
        let dims = shape.dims();
        let n = shape.elem_count();
        let vals: Vec<f32> = if dims.len() >= 2 {
            let std = 1.0 / (dims[dims.len() - 1] as f64).sqrt();
            (0..n).map(|_| (rng.normal() * std) as f32).collect()
        } else {
            vec![0.0; n]
        };
        let t = Tensor::from_vec(vals, shape, &Device::Cpu)?.to_dtype(var.dtype())?;
        var.set(&t)?;
    }
    Ok(())
}

/// Builds a fresh model with seeded parameters.
pub fn build_model(cfg: ModelConfig, seed: u64) -> Result<(VarMap, ModModel)> {
    let vm = VarMap::new();
    let model = ModModel::new(&vm, cfg)?;
    init_params(&vm, seed)?;
    Ok((vm, model))
}

/// Examples as tensors: tokens `[n, 3]` = `(a, b, '=' = p)` and labels `[n]`.
pub fn to_tensors(examples: &[Example], p: usize) -> Result<(Tensor, Tensor)> {
    let n = examples.len();
    let toks: Vec<u32> = examples.iter().flat_map(|e| [e.a, e.b, p as u32]).collect();
    let labels: Vec<u32> = examples.iter().map(|e| e.label).collect();
    Ok((
        Tensor::from_vec(toks, (n, 3), &Device::Cpu)?,
        Tensor::from_vec(labels, n, &Device::Cpu)?,
    ))
}

/// Optimisation and data settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainConfig {
    pub steps: usize,
    pub lr: f64,
    pub weight_decay: f64,
    /// Fraction of the `p²` examples used for training.
    pub train_frac: f64,
    /// Seed of the train/test split.
    pub split_seed: u64,
}

impl Default for TrainConfig {
    /// 1000 full-batch AdamW steps, lr 1e-3, weight decay 1.0, 30 % train.
    fn default() -> Self {
        TrainConfig {
            steps: 1000,
            lr: 1e-3,
            weight_decay: 1.0,
            train_frac: 0.3,
            split_seed: 0,
        }
    }
}

/// Final metrics of a training run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainResult {
    pub train_loss: f32,
    pub train_acc: f32,
    pub test_loss: f32,
    pub test_acc: f32,
}

fn evaluate(model: &ModModel, x: &Tensor, y: &Tensor) -> Result<(f32, f32)> {
    let logits = model.forward(x)?;
    let loss = candle_nn::loss::cross_entropy(&logits, y)?.to_scalar::<f32>()?;
    // Count / n (exact count, one rounding) rather than a mean of 0/1s.
    let correct = logits
        .argmax(D::Minus1)?
        .eq(y)?
        .to_dtype(DType::F32)?
        .sum_all()?
        .to_scalar::<f32>()?;
    let acc = correct / y.dims1()? as f32;
    Ok((loss, acc))
}

/// Trains the model on `varmap` (all parameters) on `task`, full batch, with
/// a fresh AdamW; returns the final train/test loss and accuracy.
pub fn train(
    varmap: &VarMap,
    cfg: ModelConfig,
    task: ModTask,
    tc: &TrainConfig,
) -> Result<TrainResult> {
    let model = ModModel::new(varmap, cfg)?;
    let (tr, te) = split(&table(task, cfg.p)?, tc.train_frac, tc.split_seed)?;
    let (xtr, ytr) = to_tensors(&tr, cfg.p)?;
    let (xte, yte) = to_tensors(&te, cfg.p)?;
    let mut opt = AdamW::new(
        varmap.all_vars(),
        ParamsAdamW {
            lr: tc.lr,
            weight_decay: tc.weight_decay,
            ..ParamsAdamW::default()
        },
    )?;
    for _ in 0..tc.steps {
        let loss = candle_nn::loss::cross_entropy(&model.forward(&xtr)?, &ytr)?;
        opt.backward_step(&loss)?;
    }
    let (train_loss, train_acc) = evaluate(&model, &xtr, &ytr)?;
    let (test_loss, test_acc) = evaluate(&model, &xte, &yte)?;
    Ok(TrainResult {
        train_loss,
        train_acc,
        test_loss,
        test_acc,
    })
}

/// Pretraining: a fresh model with seeded parameters (`init_seed`), trained
/// on `task`. Apply `scale_at_init`/`scale_all` between [`build_model`] and
/// [`train`] instead when a knob is turned before pretraining.
pub fn pretrain(
    cfg: ModelConfig,
    task: ModTask,
    tc: &TrainConfig,
    init_seed: u64,
) -> Result<(VarMap, TrainResult)> {
    let (vm, _) = build_model(cfg, init_seed)?;
    let r = train(&vm, cfg, task, tc)?;
    Ok((vm, r))
}

/// Fine-tuning: continues training all parameters of the pretrained
/// `varmap` on `task` with a fresh optimiser. No new head is needed (the
/// label space is `Z_p` for every task). `varmap` is updated in place.
pub fn fine_tune(
    varmap: &VarMap,
    cfg: ModelConfig,
    task: ModTask,
    tc: &TrainConfig,
) -> Result<TrainResult> {
    train(varmap, cfg, task, tc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knobs::scale_at_init;
    use std::collections::HashMap;

    fn small(p: usize) -> ModelConfig {
        ModelConfig {
            p,
            d_model: 64,
            n_heads: 4,
            d_mlp: 128,
        }
    }

    fn fast_tc() -> TrainConfig {
        TrainConfig {
            steps: 300,
            lr: 3e-3,
            weight_decay: 0.1,
            train_frac: 0.8,
            split_seed: 1,
        }
    }

    #[test]
    fn modular_tables_and_split() {
        let p = 23;
        for task in [ModTask::Add, ModTask::Sub, ModTask::Mul] {
            let t = table(task, p).unwrap();
            assert_eq!(t.len(), p * p);
            assert!(t.iter().all(|e| (e.label as usize) < p));
        }
        let at = |task, a: usize, b: usize| table(task, p).unwrap()[a * p + b];
        assert_eq!(at(ModTask::Add, 20, 5).label, 2);
        assert_eq!(at(ModTask::Sub, 3, 5).label, 21);
        assert_eq!(at(ModTask::Sub, 7, 7).label, 0);
        assert_eq!(at(ModTask::Mul, 5, 9).label, 45 % 23);
        assert_eq!(at(ModTask::Mul, 0, 9).label, 0);
        let e = at(ModTask::Mul, 4, 6);
        assert_eq!((e.a, e.b), (4, 6));
        assert!(matches!(
            table(ModTask::Add, 21),
            Err(ModError::NotPrime { p: 21 })
        ));
        assert!(table(ModTask::Add, 1).is_err());

        let all = table(ModTask::Add, p).unwrap();
        let (tr, te) = split(&all, 0.3, 7).unwrap();
        assert_eq!(tr.len(), (0.3 * (p * p) as f64).round() as usize);
        assert_eq!(tr.len() + te.len(), p * p);
        let mut joined: Vec<_> = tr.iter().chain(&te).map(|e| (e.a, e.b)).collect();
        joined.sort();
        let mut want: Vec<_> = all.iter().map(|e| (e.a, e.b)).collect();
        want.sort();
        assert_eq!(joined, want, "split is a partition");
        assert_eq!(split(&all, 0.3, 7).unwrap(), (tr.clone(), te));
        assert_ne!(split(&all, 0.3, 8).unwrap().0, tr);
        for f in [0.0, 1.0, f64::NAN, -0.5] {
            assert!(matches!(
                split(&all, f, 0),
                Err(ModError::BadFraction { .. })
            ));
        }
    }

    #[test]
    fn modular_add_is_learned() {
        let p = 11;
        let (_, r) = pretrain(small(p), ModTask::Add, &fast_tc(), 0).unwrap();
        assert!(r.train_acc >= 0.99, "{r:?}");
    }

    #[test]
    fn modular_training_is_deterministic() {
        let tc = TrainConfig {
            steps: 20,
            ..fast_tc()
        };
        let (vm1, r1) = pretrain(small(7), ModTask::Add, &tc, 3).unwrap();
        let (_, r2) = pretrain(small(7), ModTask::Add, &tc, 3).unwrap();
        assert_eq!(r1.train_loss.to_bits(), r2.train_loss.to_bits());
        assert_eq!(r1.test_loss.to_bits(), r2.test_loss.to_bits());
        // Fine-tuning runs from the pretrained map.
        let f = fine_tune(&vm1, small(7), ModTask::Mul, &tc).unwrap();
        assert!(f.train_loss.is_finite());
        let (_, r3) = pretrain(small(7), ModTask::Add, &tc, 4).unwrap();
        assert_ne!(r1.train_loss.to_bits(), r3.train_loss.to_bits());
    }

    fn values(vm: &VarMap) -> HashMap<String, Vec<f32>> {
        let data = vm.data().lock().unwrap();
        data.iter()
            .map(|(k, v)| {
                let t = v.as_tensor().flatten_all().unwrap();
                (k.clone(), t.to_vec1::<f32>().unwrap())
            })
            .collect()
    }

    #[test]
    fn modular_knobs_apply() {
        let (vm, _) = build_model(small(7), 5).unwrap();
        let mut tops = crate::knobs::top_level_prefixes(&vm);
        tops.sort();
        assert_eq!(tops, ["block", "embed", "head", "pos"]);
        let before = values(&vm);
        let changed = scale_at_init(&vm, &["embed", "pos"], 0.5).unwrap();
        assert_eq!(changed, ["embed.weight", "pos.weight"]);
        let after = values(&vm);
        for (name, old) in &before {
            let f = if changed.contains(name) { 0.5 } else { 1.0 };
            for (o, n) in old.iter().zip(&after[name]) {
                assert_eq!((o * f).to_bits(), n.to_bits(), "{name}");
            }
            if changed.contains(name) {
                assert!(old.iter().any(|&o| o != 0.0), "{name} changed");
            }
        }
    }
}
