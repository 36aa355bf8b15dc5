# The offline CPU trainer image: the payload on top of the locally imported Debian + python3-torch base.
# Built by docker/build-bert-cpu-image.sh with payloads/bert as the context.
ARG BASE=berth/torch-cpu-base:dev
FROM ${BASE}
ENV PYTHONPATH=/opt/berth_bert PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
COPY berth_bert /opt/berth_bert/berth_bert
COPY demo /opt/berth_bert/demo
WORKDIR /results
CMD ["python3", "-m", "berth_bert", "--help"]
