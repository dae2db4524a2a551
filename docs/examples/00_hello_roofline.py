# The "Hello, Roofline" tutorial as one runnable script (a copy of the tutorial users have).
# Run: MPLBACKEND=Agg python docs/examples/00_hello_roofline.py
import mlsysim
from mlsysim import Engine
from mlsysim.show import table, info

# ResNet-50: 25M parameters, ~4.1 GFLOP per inference (counting multiply-accumulate as 1 FLOP)
model = mlsysim.Models.ResNet50
# NVIDIA A100: 312 TFLOP/s (FP16), 2.0 TB/s HBM2e, 80 GB
hardware = mlsysim.Hardware.Cloud.A100

info("Model",
     Name=f"{model.name} ({model.architecture})",
     Parameters=model.parameters,
     FLOPs_per_inf=model.inference_flops)
info("Hardware",
     Name=hardware.name,
     Peak_FP16=hardware.compute.peak_flops.to('TFLOPs/s'),
     HBM_BW=hardware.memory.bandwidth.to('TB/s'))

profile = Engine.solve(
    model=model,
    hardware=hardware,
    batch_size=1,        # Single image inference
    precision="fp16"     # Half-precision (16-bit floating point)
)
info(Bottleneck=profile.bottleneck,
     Latency=profile.latency.to('ms'),
     Throughput=f"{profile.throughput:.0f} images/sec")

rows = []
for batch in [1, 4, 16, 32, 64, 128, 256]:
    p = Engine.solve(
        model=model,
        hardware=hardware,
        batch_size=batch,
        precision="fp16"
    )
    rows.append([batch, p.bottleneck, f"{p.throughput:.0f}/s", p.latency.to('ms')])
table(["Batch", "Bottleneck", "Throughput", "Latency"], rows)

from mlsysim.viz.plots import plot_roofline
fig, ax = plot_roofline(hardware, workloads=[model])
fig.show()

# Exercises 2 and 3 of the tutorial
h100 = mlsysim.Hardware.Cloud.H100
for batch in [1, 4, 16, 32, 64, 128, 256]:
    p = Engine.solve(model=model, hardware=h100, batch_size=batch, precision="fp16")
    print("H100", batch, p.bottleneck, p.latency.to('ms'))
llm = mlsysim.Models.Llama3_8B
p = Engine.solve(model=llm, hardware=hardware, batch_size=1, precision="fp16")
print("Llama3_8B on A100, batch 1:", p.bottleneck, p.latency.to('ms'))

# Units, as the tutorial's conventions note uses them
from mlsysim import Q_
print(Q_("2 TB/s").to("GB/s"))
