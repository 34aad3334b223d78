#!/bin/bash
# Spark-on-Kubernetes entrypoint (driver / executor), after Spark's own
# resource-managers/kubernetes/docker/src/main/dockerfiles/spark/entrypoint.sh, cut to what a
# PySpark image needs. Any other command runs as given (e.g. `spark-submit jobs/score.py ...`).
set -e
case "$1" in
  driver)
    shift 1
    exec "$SPARK_HOME/bin/spark-submit" \
      --conf "spark.driver.bindAddress=$SPARK_DRIVER_BIND_ADDRESS" \
      --conf "spark.executorEnv.SPARK_DRIVER_POD_IP=$SPARK_DRIVER_BIND_ADDRESS" \
      --deploy-mode client "$@"
    ;;
  executor)
    shift 1
    exec java -Xms"$SPARK_EXECUTOR_MEMORY" -Xmx"$SPARK_EXECUTOR_MEMORY" \
      $SPARK_JAVA_OPT_0 $SPARK_JAVA_OPT_1 $SPARK_JAVA_OPT_2 \
      -cp "$SPARK_CONF_DIR:$SPARK_HOME/jars/*" \
      org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend \
      --driver-url "$SPARK_DRIVER_URL" --executor-id "$SPARK_EXECUTOR_ID" \
      --cores "$SPARK_EXECUTOR_CORES" --app-id "$SPARK_APPLICATION_ID" \
      --hostname "$SPARK_EXECUTOR_POD_IP" --resourceProfileId "${SPARK_RESOURCE_PROFILE_ID:-0}" \
      --podName "$SPARK_EXECUTOR_POD_NAME"
    ;;
  *)
    exec "$@"
    ;;
esac
