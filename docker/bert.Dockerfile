# berth's BERT trainer for GPU hosts: the payload on NVIDIA's NGC PyTorch image (CUDA, NCCL, torch 2 with
# flash attention, fused AdamW and torch.compile). Nothing to install: the payload needs torch and numpy only.
# Build (context = the payload folder):
#   docker build -f docker/bert.Dockerfile -t berth/bert:25.01 payloads/bert
# Run, e.g. 8 GPUs:
#   docker run --gpus all --shm-size=1g --ulimit memlock=-1 --ulimit stack=67108864 -v DATA:/data:ro -v OUT:/results \
#     berth/bert:25.01 torchrun --nproc_per_node 8 -m berth_bert squad --train-file /data/train-v1.1.json ... --precision bf16
ARG NGC_PYTORCH=nvcr.io/nvidia/pytorch:25.01-py3
FROM ${NGC_PYTORCH}
ENV PYTHONPATH=/opt/berth_bert PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
COPY berth_bert /opt/berth_bert/berth_bert
COPY demo /opt/berth_bert/demo
WORKDIR /results
CMD ["python3", "-m", "berth_bert", "--help"]
