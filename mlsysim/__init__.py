"""MLSys·im: predict how ML workloads behave on hardware, from first principles.

The public names are loaded lazily so that ``import mlsysim`` stays cheap: the unit registry,
the zoo and the solvers are built on first use.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0.dev0"

_LAZY = {
    "Q_": ("mlsysim.units", "Q_"),
    "ureg": ("mlsysim.units", "ureg"),
    "Models": ("mlsysim.zoo", "Models"),
    "Hardware": ("mlsysim.zoo", "Hardware"),
    "load_hardware": ("mlsysim.zoo", "load_hardware"),
    "load_model": ("mlsysim.zoo", "load_model"),
    "errors": ("mlsysim.errors", None),
    "Engine": ("mlsysim.core.engine", "Engine"),
    "SingleNodeModel": ("mlsysim.core.engine", "SingleNodeModel"),
    "ForwardModel": ("mlsysim.core.contract", "ForwardModel"),
    "Result": ("mlsysim.core.contract", "Result"),
    "all_solvers": ("mlsysim.core.contract", "all_solvers"),
    "PerformanceProfile": ("mlsysim.core.engine", "PerformanceProfile"),
    "ServingModel": ("mlsysim.solvers.serving", "ServingModel"),
    "ContinuousBatchingModel": ("mlsysim.solvers.continuous_batching", "ContinuousBatchingModel"),
    "TailLatencyModel": ("mlsysim.solvers.queueing", "TailLatencyModel"),
    "CompressionModel": ("mlsysim.solvers.compression", "CompressionModel"),
    "WeightStreamingModel": ("mlsysim.solvers.weight_streaming", "WeightStreamingModel"),
    "InferenceScalingModel": ("mlsysim.solvers.inference_scaling", "InferenceScalingModel"),
    "BatchingOptimizer": ("mlsysim.optimize.batching", "BatchingOptimizer"),
    "ScalingModel": ("mlsysim.solvers.scaling", "ScalingModel"),
    "CheckpointModel": ("mlsysim.solvers.checkpoint", "CheckpointModel"),
    "ReliabilityModel": ("mlsysim.solvers.reliability", "ReliabilityModel"),
    "TopologyModel": ("mlsysim.solvers.topology", "TopologyModel"),
    "NetworkRooflineModel": ("mlsysim.solvers.network_roofline", "NetworkRooflineModel"),
    "DataModel": ("mlsysim.solvers.data_pipeline", "DataModel"),
    "TransformationModel": ("mlsysim.solvers.data_pipeline", "TransformationModel"),
    "OrchestrationModel": ("mlsysim.solvers.orchestration", "OrchestrationModel"),
    "ServingEngines": ("mlsysim.zoo", "ServingEngines"),
    "ShardingRuntimes": ("mlsysim.zoo", "ShardingRuntimes"),
    "Systems": ("mlsysim.zoo", "Systems"),
    "Infra": ("mlsysim.zoo", "Infra"),
    "Datacenter": ("mlsysim.specs.infra", "Datacenter"),
    "GridSpec": ("mlsysim.specs.infra", "GridSpec"),
    "Fleet": ("mlsysim.specs.system", "Fleet"),
    "Node": ("mlsysim.specs.system", "Node"),
    "NetworkFabric": ("mlsysim.specs.system", "NetworkFabric"),
    "ServingConfig": ("mlsysim.specs.configs", "ServingConfig"),
    "DistributedConfig": ("mlsysim.specs.configs", "DistributedConfig"),
    "DistributedModel": ("mlsysim.solvers.distributed", "DistributedModel"),
    "SustainabilityModel": ("mlsysim.solvers.sustainability", "SustainabilityModel"),
    "EconomicsModel": ("mlsysim.solvers.economics", "EconomicsModel"),
    "PlacementOptimizer": ("mlsysim.optimize.placement", "PlacementOptimizer"),
    "EfficiencyModel": ("mlsysim.solvers.efficiency", "EfficiencyModel"),
    "ResponsibleEngineeringModel": ("mlsysim.solvers.responsible", "ResponsibleEngineeringModel"),
    "ParallelismOptimizer": ("mlsysim.optimize.parallelism", "ParallelismOptimizer"),
    "ContinuousBatchingConfig": ("mlsysim.specs.configs", "ContinuousBatchingConfig"),
    "Scenario": ("mlsysim.specs.scenario", "Scenario"),
    "load_scenario": ("mlsysim.scenarios", "load_scenario"),
    "evaluate_scenario": ("mlsysim.scenarios", "evaluate_scenario"),
    "SensitivitySolver": ("mlsysim.solvers.sensitivity", "SensitivitySolver"),
    "SynthesisSolver": ("mlsysim.solvers.sensitivity", "SynthesisSolver"),
    "DifferentialExplainer": ("mlsysim.solvers.compare", "DifferentialExplainer"),
    "compare": ("mlsysim.solvers.compare", "compare"),
    "sweep": ("mlsysim.optimize.sweep", "sweep"),
    "serving_sweep": ("mlsysim.optimize.sweep", "serving_sweep"),
    "pareto_front": ("mlsysim.optimize.sweep", "pareto_front"),
    "SystemEvaluator": ("mlsysim.evaluation", "SystemEvaluator"),
    "Scorecard": ("mlsysim.evaluation", "Scorecard"),
    "Scenarios": ("mlsysim.evaluation", "Scenarios"),
    "Pipeline": ("mlsysim.evaluation", "Pipeline"),
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'mlsysim' has no attribute '{name}'") from None
    mod = importlib.import_module(module)
    value = mod if attr is None else getattr(mod, attr)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
