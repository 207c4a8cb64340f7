#!/usr/bin/env bash
# test_conns.sh over SMC-D over shm between the lab's two hosts (two
# network namespaces, one kernel): every connection SMC-D (smcd= in
# USMC_STATS), the DMBs memfds shared by the two processes.
export USMC_SHM=1
exec bash "$(dirname "$0")/test_conns.sh"
