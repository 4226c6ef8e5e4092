//! BBN's bilateral-branch backbone (Zhou et al., CVPR 2020; the authors' `BBN_ResNet_Cifar` and
//! `BBN_ResNet`, `lib/backbone/resnet_cifar.py:158-164`): a ResNet whose **last residual block**
//! is duplicated into a conventional-learning branch and a re-balancing branch; everything before
//! it is shared. At test time both branches run on the same trunk output and their maps are
//! concatenated along channels (`torch.cat((cb_block(out), rb_block(out)), 1)`), so the pooled
//! feature is twice the backbone's width.

use burn::module::Module;
use burn::tensor::Tensor;

use crate::error::ModelError;
use crate::init::Init;
use crate::resnet::{Bottleneck, ResNet};
use crate::resnet_cifar::{BasicBlock, ResNetCifar};

/// The shared part: a backbone with its last block removed (or a whole backbone under
/// ResLT's batch-norm branches).
#[derive(Module, Debug)]
pub enum Trunk {
    Cifar(ResNetCifar),
    ResNet(ResNet),
}

impl Trunk {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Trunk::Cifar(b) => b.forward(x),
            Trunk::ResNet(b) => b.forward(x),
        }
    }
}

/// One branch: a copy of the backbone's last block.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant, reason = "two per network")]
pub enum BranchBlock {
    Basic(BasicBlock),
    Bottleneck(Bottleneck),
}

impl BranchBlock {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            BranchBlock::Basic(b) => b.forward(x),
            BranchBlock::Bottleneck(b) => b.forward(x),
        }
    }
}

/// The shared trunk and the two branches.
#[derive(Module, Debug)]
pub struct TwoBranch {
    pub trunk: Trunk,
    /// The conventional-learning branch (instance-sampled batches): the backbone's own last block.
    pub conventional: BranchBlock,
    /// The re-balancing branch (reverse-sampled batches): a freshly initialised block of its shape.
    pub rebalancing: BranchBlock,
}

impl TwoBranch {
    /// Splits a CIFAR ResNet (its last `layer3` block) or a bottleneck ResNet (its last `layer4`
    /// block). A stage left empty by the split (ResNet-8 has one block per stage) is an error, as
    /// are ResNeXt (grouped) and CSMS backbones.
    pub fn split_cifar(mut b: ResNetCifar, init: &mut Init) -> Result<Self, ModelError> {
        if b.layer3.len() < 2 {
            return Err(ModelError::Config(format!(
                "two_branch (BBN) duplicates the last residual block, and this backbone's last stage has {} block(s): the shared stage would be empty; use resnet20 or deeper",
                b.layer3.len()
            )));
        }
        let last = b.layer3.pop().expect("checked: at least two blocks");
        let planes = last.conv2.weight.dims()[0];
        let rebalancing = BasicBlock::init(init, planes, planes, 1);
        Ok(Self { trunk: Trunk::Cifar(b), conventional: BranchBlock::Basic(last), rebalancing: BranchBlock::Basic(rebalancing) })
    }

    /// See [`TwoBranch::split_cifar`]; `groups == 1` only (BBN's ResNet-50).
    pub fn split_resnet(mut b: ResNet, init: &mut Init) -> Result<Self, ModelError> {
        if b.layer4.len() < 2 {
            return Err(ModelError::Config("two_branch (BBN): the last stage has one block; the shared stage would be empty".into()));
        }
        let last = b.layer4.pop().expect("checked: at least two blocks");
        let [width, per_group, _, _] = last.conv2.weight.dims();
        if per_group != width {
            return Err(ModelError::Config("two_branch (BBN) is built for plain ResNets (BBN_ResNet); a grouped ResNeXt block is not supported".into()));
        }
        let out = last.conv3.weight.dims()[0];
        let rebalancing = Bottleneck::init(init, out, out / Bottleneck::EXPANSION, 1, 1, 64);
        Ok(Self { trunk: Trunk::ResNet(b), conventional: BranchBlock::Bottleneck(last), rebalancing: BranchBlock::Bottleneck(rebalancing) })
    }

    /// The shared trunk's map.
    pub fn trunk(&self, x: Tensor<4>) -> Tensor<4> {
        self.trunk.forward(x)
    }

    /// The conventional branch's map of a trunk map.
    pub fn conventional(&self, trunk: Tensor<4>) -> Tensor<4> {
        self.conventional.forward(trunk)
    }

    /// The re-balancing branch's map of a trunk map.
    pub fn rebalancing(&self, trunk: Tensor<4>) -> Tensor<4> {
        self.rebalancing.forward(trunk)
    }

    /// Test time: both branches on one trunk map, concatenated along channels.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let t = self.trunk(x);
        Tensor::cat(vec![self.conventional(t.clone()), self.rebalancing(t)], 1)
    }
}
