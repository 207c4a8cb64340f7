#!/usr/bin/env bash
# Debian's nginx (epoll, edge-triggered; one worker, daemon off, a config
# of its own in the test's directory) under usmc-run serves a 100 MiB file
# to curl, also under usmc-run, over softroce; in the lab (h2 -> h1) and
# on one host (h1, 127.0.0.1 -> 127.0.0.2). Twice each: with sendfile on
# (the preload's sendfile) and off (nginx's writev), plus a small file. The
# sha256 of every body must match the file's, and curl and nginx's worker
# (the process that accepts: the master only listens) report SMC-R
# connections only. nginx clears its workers' environment: the config
# passes usmc's variables on with "env" (the worker's runtime starts after
# the fork and reads them; the stats line needs USMC_STATS).
. "$(dirname "$0")/lib_apps.sh"
t_need_cmd timeout ss nginx curl sha256sum
t_lab_up
A_PORTS=8080
MB=${A_MB:-100}
mkdir -p "$t_work/www"
head -c $((MB * 1048576)) /dev/urandom >"$t_work/www/big"
head -c 4097 /dev/urandom >"$t_work/www/small"
want_big=$(sha256sum <"$t_work/www/big" | cut -d' ' -f1)
want_small=$(sha256sum <"$t_work/www/small" | cut -d' ' -f1)

conf() { # ADDR SENDFILE: the config for one run
	cat <<CONF
daemon off;
master_process on;
# nginx clears its workers' environment but for the variables named here
env USMC_STATS;
env USMC_STAT_DIR;
env USMC_DEBUG;
env USMC_SMC_PORTS;
env USMC_SOFTROCE_PORT;
env USMC_TRANSPORT;
worker_processes 1;
user root;
pid $t_work/nginx.pid;
error_log $t_work/nginx-error.log info;
events { use epoll; worker_connections 64; }
http {
	access_log $t_work/nginx-access.log;
	client_body_temp_path $t_work/tmp-body;
	proxy_temp_path $t_work/tmp-proxy;
	fastcgi_temp_path $t_work/tmp-fastcgi;
	uwsgi_temp_path $t_work/tmp-uwsgi;
	scgi_temp_path $t_work/tmp-scgi;
	sendfile $2;
	keepalive_timeout 5;
	server {
		listen $1:8080;
		root $t_work/www;
	}
}
CONF
}

run() { # WHERE SENDFILE
	a_where "$1"
	local tag=$1-sendfile-$2 f got rc
	conf "$A_SADDR" "$2" >"$t_work/nginx.conf"
	a_server "nginx-$tag" 8080 nginx -p "$t_work" -c "$t_work/nginx.conf" -e "$t_work/nginx-error.log" || {
		a_fail "$tag: nginx did not start: $(tail -3 "$t_work/nginx-error.log")"
		return
	}
	for f in big small; do
		rc=0
		T_TIMEOUT=180 a_client "curl-$tag-$f" curl -sS --max-time 170 -o "$t_work/got-$f" \
			-w '%{http_code} %{size_download} %{speed_download}' "http://$A_SADDR:8080/$f" || rc=$?
		got=$(sha256sum <"$t_work/got-$f" | cut -d' ' -f1)
		local want=$want_big
		[ $f = small ] && want=$want_small
		set -- $(cat "$t_work/curl-$tag-$f.out")
		if [ $rc = 0 ] && [ "$1" = 200 ] && [ "$got" = "$want" ] && a_smcr "$t_work/curl-$tag-$f.stats" 1; then
			t_log "ok $tag: /$f, HTTP $1, $2 bytes at $(($(printf %.0f "$3") / 1048576)) MiB/s, sha256 $got, curl $A_SMCR"
		else
			a_fail "$tag: /$f: curl exit $rc, '$*', sha256 $got (want $want)"
			a_show "curl-$tag-$f"
		fi
		rm -f "$t_work/got-$f"
	done
	# SIGQUIT: graceful; the worker and the master exit normally (stats lines)
	a_stop $a_spid QUIT || a_fail "$tag: nginx exit status $?"
	if a_smcr "$t_work/nginx-$tag.stats" 2 && [ "$(grep -c 'stats:' "$t_work/nginx-$tag.stats")" = 2 ]; then
		t_log "ok $tag: nginx master and worker: $A_SMCR"
	else
		a_fail "$tag: nginx not all over SMC-R"
		a_show "nginx-$tag"
	fi
}

for w in lab local; do
	run $w on
	run $w off
done
a_end
