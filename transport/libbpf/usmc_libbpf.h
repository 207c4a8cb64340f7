/* SPDX-License-Identifier: MIT */
/*
 * libbpf, loaded on first use (usmc_libbpf_load) instead of linked: the
 * preload library then needs no libbpf, libelf or libz of its own, which
 * could clash with a host program's copies (docs/preload.md, "Libraries").
 * A file that calls libbpf includes this header instead of libbpf's own; each
 * call it makes goes through the table that the load filled, and is made
 * only after usmc_libbpf_load returned 0.
 */
#ifndef USMC_LIBBPF_H
#define USMC_LIBBPF_H

#include <stddef.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#define USMC_LIBBPF_FNS(X)                  \
	X(bpf_link__destroy)                \
	X(bpf_map__reuse_fd)                \
	X(bpf_map_create)                   \
	X(bpf_map_delete_elem)              \
	X(bpf_map_get_fd_by_id)             \
	X(bpf_map_lookup_elem)              \
	X(bpf_map_update_elem)              \
	X(bpf_link_get_fd_by_id)            \
	X(bpf_link_get_next_id)             \
	X(bpf_obj_get_info_by_fd)           \
	X(bpf_object__close)                \
	X(bpf_object__find_map_by_name)     \
	X(bpf_object__find_map_fd_by_name)  \
	X(bpf_object__find_program_by_name) \
	X(bpf_object__load)                 \
	X(bpf_object__open_mem)             \
	X(bpf_program__attach_cgroup)       \
	X(bpf_program__fd)                  \
	X(bpf_prog_get_fd_by_id)            \
	X(libbpf_set_print)

typedef struct usmc_libbpf_fns {
#define USMC_LIBBPF_MEMBER(n) __typeof__(n) *n;
	USMC_LIBBPF_FNS(USMC_LIBBPF_MEMBER)
#undef USMC_LIBBPF_MEMBER
} usmc_libbpf_fns;

extern usmc_libbpf_fns usmc_libbpf;

/* Loads libbpf.so.1 once (RTLD_LOCAL: its symbols stay out of the
 * program's scope): 0, or -1 with the reason in |why| (dlerror's text,
 * every time). */
int usmc_libbpf_load(char *why, size_t whylen);

#ifndef USMC_LIBBPF_IMPL
#define bpf_link__destroy	     (usmc_libbpf.bpf_link__destroy)
#define bpf_map__reuse_fd	     (usmc_libbpf.bpf_map__reuse_fd)
#define bpf_map_create		     (usmc_libbpf.bpf_map_create)
#define bpf_map_delete_elem	     (usmc_libbpf.bpf_map_delete_elem)
#define bpf_map_get_fd_by_id	     (usmc_libbpf.bpf_map_get_fd_by_id)
#define bpf_map_lookup_elem	     (usmc_libbpf.bpf_map_lookup_elem)
#define bpf_map_update_elem	     (usmc_libbpf.bpf_map_update_elem)
#define bpf_link_get_fd_by_id	     (usmc_libbpf.bpf_link_get_fd_by_id)
#define bpf_link_get_next_id	     (usmc_libbpf.bpf_link_get_next_id)
#define bpf_obj_get_info_by_fd	     (usmc_libbpf.bpf_obj_get_info_by_fd)
#define bpf_object__close	     (usmc_libbpf.bpf_object__close)
#define bpf_object__find_map_by_name (usmc_libbpf.bpf_object__find_map_by_name)
#define bpf_object__find_map_fd_by_name \
	(usmc_libbpf.bpf_object__find_map_fd_by_name)
#define bpf_object__find_program_by_name \
	(usmc_libbpf.bpf_object__find_program_by_name)
#define bpf_object__load	   (usmc_libbpf.bpf_object__load)
#define bpf_object__open_mem	   (usmc_libbpf.bpf_object__open_mem)
#define bpf_program__attach_cgroup (usmc_libbpf.bpf_program__attach_cgroup)
#define bpf_program__fd		   (usmc_libbpf.bpf_program__fd)
#define bpf_prog_get_fd_by_id	   (usmc_libbpf.bpf_prog_get_fd_by_id)
#define libbpf_set_print	   (usmc_libbpf.libbpf_set_print)
#endif

#endif
