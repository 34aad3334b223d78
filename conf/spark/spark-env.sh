# Sourced by spark-submit and spark-class (the standalone master and workers) where
# SPARK_CONF_DIR is this folder, as the README, the Makefile and the image set it.
#
# Java reads file names in the locale's character set. Without a UTF-8 locale (a cron job, a bare
# container, LANG=C) it reads them as ASCII and cannot open `café.jpg` or `ünï.jpg`: such files
# were passed over. A UTF-8 locale already set is kept.
case "${LC_ALL:-${LC_CTYPE:-${LANG:-}}}" in
  *[Uu][Tt][Ff]-8* | *[Uu][Tt][Ff]8*) ;;
  *) LC_ALL=C.UTF-8 ;;
esac
