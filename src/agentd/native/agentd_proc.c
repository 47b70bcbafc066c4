/*
 * agentd_proc: what the agent supervisor (PID 1 of every agent container) needs and Node cannot do.
 *
 *   spawn({file, argv, env, cwd, uid, gid, foreground, stdin, stdout, stderr}) -> pid
 *       fork; the child becomes its own process group, optionally takes the terminal, drops to
 *       uid/gid (no supplementary groups, no new privileges), enters cwd as that user and execs
 *       `file` (PATH-searched like execvp). uid or gid 0 is refused. A failure before exec is
 *       reported through a close-on-exec pipe and thrown here: "exec claude: No such file or directory".
 *   reap() -> [{pid, exitCode|null, signal|null}]
 *       waitpid(-1, WNOHANG) until nothing is left: our children and orphans reparented to us.
 *   pipe() -> [readFd, writeFd]       both close-on-exec.
 *   becomeSubreaper() -> undefined    orphans of our descendants come to us even when not PID 1.
 *
 * Plain C, libc and node_api.h only, so the image build can compile it with nothing else.
 * Between fork and execve the child runs only async-signal-safe code: the parent is multi-threaded
 * (Node), so everything the child needs is allocated before the fork.
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define MAX_STRING (1024 * 1024)
#define MAX_ARGS 4096

/* Which step of the child's setup failed: sent to the parent with errno. */
enum step {
  STEP_SIGNALS = 1,
  STEP_SETPGID,
  STEP_DUP2,
  STEP_TCSETPGRP,
  STEP_CHDIR,
  STEP_SETGROUPS,
  STEP_SETGID,
  STEP_SETUID,
  STEP_VERIFY,
  STEP_NO_NEW_PRIVS,
  STEP_EXEC,
};

static const char *step_name(int step) {
  switch (step) {
    case STEP_SIGNALS: return "reset signals";
    case STEP_SETPGID: return "setpgid";
    case STEP_DUP2: return "dup2";
    case STEP_TCSETPGRP: return "tcsetpgrp";
    case STEP_CHDIR: return "chdir";
    case STEP_SETGROUPS: return "setgroups";
    case STEP_SETGID: return "setgid";
    case STEP_SETUID: return "setuid";
    case STEP_VERIFY: return "verify privilege drop";
    case STEP_NO_NEW_PRIVS: return "no_new_privs";
    case STEP_EXEC: return "exec";
    default: return "spawn";
  }
}

static const char *errno_code(int err) {
  switch (err) {
    case ENOENT: return "ENOENT";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case ENOEXEC: return "ENOEXEC";
    case ENOTDIR: return "ENOTDIR";
    case ELOOP: return "ELOOP";
    case E2BIG: return "E2BIG";
    case ENOMEM: return "ENOMEM";
    case ETXTBSY: return "ETXTBSY";
    case EINVAL: return "EINVAL";
    case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    default: return "ESPAWN";
  }
}

/* ---- small N-API helpers: every failure becomes a thrown JS error ------------------------------ */

#define CHECK(call)                                                     \
  do {                                                                  \
    if ((call) != napi_ok) {                                            \
      throw_pending_or(env, "agentd_proc: N-API call failed: " #call);  \
      goto fail;                                                        \
    }                                                                   \
  } while (0)

static void throw_pending_or(napi_env env, const char *message) {
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) return;
  napi_throw_error(env, NULL, message);
}

static napi_value named(napi_env env, napi_value object, const char *name) {
  napi_value value = NULL;
  if (napi_get_named_property(env, object, name, &value) != napi_ok) return NULL;
  return value;
}

/* A JS string as a fresh NUL-terminated C string (no embedded NULs), or NULL with an exception. */
static char *string_of(napi_env env, napi_value value, const char *what) {
  size_t length = 0;
  if (napi_get_value_string_utf8(env, value, NULL, 0, &length) != napi_ok) {
    char message[128];
    snprintf(message, sizeof message, "agentd_proc: %s must be a string", what);
    napi_throw_type_error(env, NULL, message);
    return NULL;
  }
  if (length > MAX_STRING) {
    napi_throw_range_error(env, NULL, "agentd_proc: string too long");
    return NULL;
  }
  char *text = malloc(length + 1);
  if (text == NULL) {
    napi_throw_error(env, NULL, "agentd_proc: out of memory");
    return NULL;
  }
  napi_get_value_string_utf8(env, value, text, length + 1, &length);
  if (strlen(text) != length) {
    free(text);
    char message[128];
    snprintf(message, sizeof message, "agentd_proc: %s contains a NUL character", what);
    napi_throw_type_error(env, NULL, message);
    return NULL;
  }
  return text;
}

static void free_strings(char **strings) {
  if (strings == NULL) return;
  for (char **s = strings; *s != NULL; s++) free(*s);
  free(strings);
}

/* A JS array of strings as a NULL-terminated C array. */
static char **strings_of(napi_env env, napi_value array, const char *what, bool non_empty) {
  bool is_array = false;
  uint32_t length = 0;
  if (array == NULL || napi_is_array(env, array, &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, array, &length) != napi_ok) {
    char message[128];
    snprintf(message, sizeof message, "agentd_proc: %s must be an array of strings", what);
    napi_throw_type_error(env, NULL, message);
    return NULL;
  }
  if (length > MAX_ARGS || (non_empty && length == 0)) {
    char message[128];
    snprintf(message, sizeof message, "agentd_proc: %s must have 1 to %d entries", what, MAX_ARGS);
    napi_throw_range_error(env, NULL, message);
    return NULL;
  }
  char **strings = calloc(length + 1, sizeof *strings);
  if (strings == NULL) {
    napi_throw_error(env, NULL, "agentd_proc: out of memory");
    return NULL;
  }
  for (uint32_t i = 0; i < length; i++) {
    napi_value element;
    if (napi_get_element(env, array, i, &element) != napi_ok || (strings[i] = string_of(env, element, what)) == NULL) {
      free_strings(strings);
      return NULL;
    }
  }
  return strings;
}

static bool int32_of(napi_env env, napi_value value, const char *what, int32_t *out) {
  napi_valuetype type;
  if (value == NULL || napi_typeof(env, value, &type) != napi_ok || type != napi_number ||
      napi_get_value_int32(env, value, out) != napi_ok) {
    char message[128];
    snprintf(message, sizeof message, "agentd_proc: %s must be an integer", what);
    napi_throw_type_error(env, NULL, message);
    return false;
  }
  return true;
}

/* ---- spawn ------------------------------------------------------------------------------------ */

struct spawn_plan {
  char *file;
  char *cwd;
  char **argv;
  char **envp;
  /* Every path execve will try, in order: `file` itself if it has a slash, else file under each PATH entry. */
  char **candidates;
  uid_t uid;
  gid_t gid;
  bool foreground;
  int fds[3]; /* -1: inherit */
  pid_t parent; /* agentd, to notice it died before the child asked to die with it */
};

static void free_plan(struct spawn_plan *plan) {
  free(plan->file);
  free(plan->cwd);
  free_strings(plan->argv);
  free_strings(plan->envp);
  free_strings(plan->candidates);
}

/* PATH from the command's environment (what the command itself would see), else the usual default. */
static const char *path_of(char **envp) {
  for (char **e = envp; *e != NULL; e++) {
    if (strncmp(*e, "PATH=", 5) == 0) return *e + 5;
  }
  return DEFAULT_PATH;
}

static char **exec_candidates(const char *file, char **envp) {
  if (strchr(file, '/') != NULL) {
    char **one = calloc(2, sizeof *one);
    if (one == NULL || (one[0] = strdup(file)) == NULL) {
      free(one);
      return NULL;
    }
    return one;
  }
  const char *path = path_of(envp);
  size_t entries = 1;
  for (const char *p = path; *p; p++) entries += *p == ':';
  char **list = calloc(entries + 1, sizeof *list);
  if (list == NULL) return NULL;
  size_t n = 0;
  const char *start = path;
  for (;;) {
    const char *end = strchr(start, ':');
    size_t dir_length = end ? (size_t)(end - start) : strlen(start);
    /* An empty PATH entry means the current directory (POSIX). */
    const char *dir = dir_length == 0 ? "." : start;
    size_t used = dir_length == 0 ? 1 : dir_length;
    char *candidate = malloc(used + 1 + strlen(file) + 1);
    if (candidate == NULL) {
      free_strings(list);
      return NULL;
    }
    memcpy(candidate, dir, used);
    candidate[used] = '/';
    strcpy(candidate + used + 1, file);
    list[n++] = candidate;
    if (end == NULL) break;
    start = end + 1;
  }
  return list;
}

static bool read_plan(napi_env env, napi_value options, struct spawn_plan *plan) {
  memset(plan, 0, sizeof *plan);
  napi_valuetype type;
  if (napi_typeof(env, options, &type) != napi_ok || type != napi_object) {
    napi_throw_type_error(env, NULL, "agentd_proc: spawn takes an options object");
    return false;
  }
  int32_t uid, gid;
  bool foreground = false;
  if ((plan->file = string_of(env, named(env, options, "file"), "file")) == NULL) return false;
  if ((plan->cwd = string_of(env, named(env, options, "cwd"), "cwd")) == NULL) return false;
  if ((plan->argv = strings_of(env, named(env, options, "argv"), "argv", true)) == NULL) return false;
  if ((plan->envp = strings_of(env, named(env, options, "env"), "env", false)) == NULL) return false;
  if (!int32_of(env, named(env, options, "uid"), "uid", &uid) || !int32_of(env, named(env, options, "gid"), "gid", &gid)) return false;
  /* The whole point is to never run the command as root: refuse before forking. */
  if (uid <= 0 || gid <= 0) {
    napi_throw_range_error(env, NULL, "agentd_proc: refusing to spawn as root (uid and gid must be > 0)");
    return false;
  }
  plan->uid = (uid_t)uid;
  plan->gid = (gid_t)gid;
  napi_value fg = named(env, options, "foreground");
  if (fg != NULL && napi_typeof(env, fg, &type) == napi_ok && type == napi_boolean) napi_get_value_bool(env, fg, &foreground);
  plan->foreground = foreground;
  static const char *fd_names[3] = {"stdin", "stdout", "stderr"};
  for (int i = 0; i < 3; i++) {
    napi_value value = named(env, options, fd_names[i]);
    int32_t fd = -1;
    if (value != NULL && napi_typeof(env, value, &type) == napi_ok && type != napi_undefined && type != napi_null) {
      if (!int32_of(env, value, fd_names[i], &fd)) return false;
      if (fd < -1) {
        napi_throw_range_error(env, NULL, "agentd_proc: a file descriptor must be >= -1");
        return false;
      }
    }
    plan->fds[i] = fd;
  }
  if (plan->file[0] == '\0') {
    napi_throw_range_error(env, NULL, "agentd_proc: file must not be empty");
    return false;
  }
  if ((plan->candidates = exec_candidates(plan->file, plan->envp)) == NULL) {
    napi_throw_error(env, NULL, "agentd_proc: out of memory");
    return false;
  }
  return true;
}

struct child_failure {
  int32_t step;
  int32_t err;
};

/* Child side: tell the parent what failed, then leave without running any of the parent's atexit code. */
static _Noreturn void child_fail(int report_fd, int step, int err) {
  struct child_failure failure = {step, err};
  ssize_t ignored = write(report_fd, &failure, sizeof failure);
  (void)ignored;
  _exit(127);
}

/* Marks every descriptor from 3 up close-on-exec (the report pipe already is), so none leaks into the command. */
static void close_on_exec_from_3(void) {
#ifdef SYS_close_range
  /* CLOSE_RANGE_CLOEXEC (Linux 5.11+). */
  if (syscall(SYS_close_range, 3U, ~0U, 4U /* CLOSE_RANGE_CLOEXEC */) == 0) return;
#endif
  struct rlimit limit;
  long max = 65536;
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY && (long)limit.rlim_cur < max) max = (long)limit.rlim_cur;
  for (int fd = 3; fd < max; fd++) {
    int flags = fcntl(fd, F_GETFD);
    if (flags >= 0 && !(flags & FD_CLOEXEC)) fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
  }
}

static _Noreturn void run_child(const struct spawn_plan *plan, int report_fd) {
  /* Signals are all blocked (the parent did it before fork). Default dispositions first, so nothing
     of Node's handlers can run in the child; the mask is cleared only just before exec. */
  struct sigaction default_action;
  memset(&default_action, 0, sizeof default_action);
  default_action.sa_handler = SIG_DFL;
  sigemptyset(&default_action.sa_mask);
  for (int sig = 1; sig < NSIG; sig++) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    /* glibc reserves a few real-time signals for itself and refuses them: nothing to reset there. */
    if (sigaction(sig, &default_action, NULL) != 0 && errno != EINVAL) child_fail(report_fd, STEP_SIGNALS, errno);
  }

  if (setpgid(0, 0) != 0) child_fail(report_fd, STEP_SETPGID, errno);

  for (int i = 0; i < 3; i++) {
    if (plan->fds[i] < 0 || plan->fds[i] == i) continue;
    if (dup2(plan->fds[i], i) < 0) child_fail(report_fd, STEP_DUP2, errno);
  }
  /* Node marks its own 0-2 close-on-exec at startup: an inherited one (and one passed as its own
     number) would vanish at exec. dup2 already cleared the flag on the others. */
  for (int i = 0; i < 3; i++) {
    int flags = fcntl(i, F_GETFD);
    if (flags >= 0 && (flags & FD_CLOEXEC)) fcntl(i, F_SETFD, flags & ~FD_CLOEXEC);
  }
  close_on_exec_from_3();

  /* Take the terminal for our new group, so ^C, ^Z and reads go to the command, not to agentd.
     SIGTTOU is still blocked here (the whole mask is), which tcsetpgrp from a background group needs. */
  if (plan->foreground && isatty(0)) {
    /* ENOTTY: a terminal that is not agentd's controlling one; job control (SIGTTIN) does not apply
       to it, so the command can run without owning it. Anything else would leave it stopped on read. */
    if (tcsetpgrp(0, getpid()) != 0 && errno != ENOTTY) child_fail(report_fd, STEP_TCSETPGRP, errno);
  }

  /* Order matters: groups and gid while still root, uid last. */
  if (setgroups(0, NULL) != 0) child_fail(report_fd, STEP_SETGROUPS, errno);
  if (setgid(plan->gid) != 0) child_fail(report_fd, STEP_SETGID, errno);
  if (setuid(plan->uid) != 0) child_fail(report_fd, STEP_SETUID, errno);
  /* Fail closed if anything of root is left: ids, supplementary groups, or a way back to uid 0. */
  if (getuid() != plan->uid || geteuid() != plan->uid || getgid() != plan->gid || getegid() != plan->gid ||
      getgroups(0, NULL) != 0 || setuid(0) == 0 || setgid(0) == 0) {
    child_fail(report_fd, STEP_VERIFY, EPERM);
  }
  /* Only now, as the agent user: a chdir as root could hand the command a directory it may not enter
     (a 0700 one of root's), from where relative paths would bypass that directory's permissions. */
  if (chdir(plan->cwd) != 0) child_fail(report_fd, STEP_CHDIR, errno);
  /* setuid binaries in the image must not lift the command back up (the bounding set still holds agentd's caps). */
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) child_fail(report_fd, STEP_NO_NEW_PRIVS, errno);
  /* Die with agentd when it is not PID 1 (tests, a crash); set after setuid, which clears it. */
  prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  if (getppid() != plan->parent) _exit(127);

  sigset_t none;
  sigemptyset(&none);
  if (sigprocmask(SIG_SETMASK, &none, NULL) != 0) child_fail(report_fd, STEP_SIGNALS, errno);

  /* PATH search as execvp does it: remember EACCES, keep going on "not here", stop on anything else. */
  int err = ENOENT;
  bool saw_eacces = false;
  for (char **candidate = plan->candidates; *candidate != NULL; candidate++) {
    execve(*candidate, plan->argv, plan->envp);
    err = errno;
    if (err == EACCES) {
      saw_eacces = true;
      continue;
    }
    if (err == ENOENT || err == ENOTDIR || err == ESTALE || err == ENODEV || err == ETIMEDOUT) continue;
    break;
  }
  if ((err == ENOENT || err == ENOTDIR) && saw_eacces) err = EACCES;
  child_fail(report_fd, STEP_EXEC, err);
}

static napi_value throw_spawn_failure(napi_env env, const struct spawn_plan *plan, int step, int err) {
  char message[1024];
  const char *subject = step == STEP_EXEC ? plan->file : step == STEP_CHDIR ? plan->cwd : NULL;
  if (subject != NULL) {
    snprintf(message, sizeof message, "%s %s: %s", step_name(step), subject, strerror(err));
  } else if (step >= STEP_SETGROUPS && step <= STEP_NO_NEW_PRIVS) {
    snprintf(message, sizeof message, "%s (to uid %u gid %u) before exec %s: %s", step_name(step), (unsigned)plan->uid,
             (unsigned)plan->gid, plan->file, strerror(err));
  } else {
    snprintf(message, sizeof message, "%s before exec %s: %s", step_name(step), plan->file, strerror(err));
  }
  napi_value error, code, message_value, step_value;
  if (napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &message_value) != napi_ok ||
      napi_create_string_utf8(env, errno_code(err), NAPI_AUTO_LENGTH, &code) != napi_ok ||
      napi_create_error(env, code, message_value, &error) != napi_ok ||
      napi_create_string_utf8(env, step_name(step), NAPI_AUTO_LENGTH, &step_value) != napi_ok ||
      napi_set_named_property(env, error, "step", step_value) != napi_ok) {
    throw_pending_or(env, message);
    return NULL;
  }
  napi_throw(env, error);
  return NULL;
}

static napi_value spawn_command(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value args[1];
  struct spawn_plan plan;
  napi_value result = NULL;
  memset(&plan, 0, sizeof plan);
  CHECK(napi_get_cb_info(env, info, &argc, args, NULL, NULL));
  if (argc < 1) {
    napi_throw_type_error(env, NULL, "agentd_proc: spawn takes an options object");
    return NULL;
  }
  if (!read_plan(env, args[0], &plan)) goto fail;

  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) {
    char message[128];
    snprintf(message, sizeof message, "pipe2 for spawn: %s", strerror(errno));
    napi_throw_error(env, errno_code(errno), message);
    goto fail;
  }
  /* Block everything across fork, so no signal handler of Node's runs in the child. */
  plan.parent = getpid();
  sigset_t all, previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  pid_t pid = fork();
  if (pid == 0) {
    close(report[0]);
    run_child(&plan, report[1]);
  }
  int fork_errno = errno;
  pthread_sigmask(SIG_SETMASK, &previous, NULL);
  close(report[1]);
  if (pid < 0) {
    close(report[0]);
    char message[256];
    snprintf(message, sizeof message, "fork for %s: %s", plan.file, strerror(fork_errno));
    napi_throw_error(env, errno_code(fork_errno), message);
    goto fail;
  }
  /* Also from this side: no window in which a signal to the group would miss the child. */
  setpgid(pid, pid);

  struct child_failure failure;
  size_t got = 0;
  while (got < sizeof failure) {
    ssize_t n = read(report[0], (char *)&failure + got, sizeof failure - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += (size_t)n;
  }
  close(report[0]);
  if (got == sizeof failure) {
    /* The child has exited (or is about to): collect it here so no one else sees a stray exit. */
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
    throw_spawn_failure(env, &plan, failure.step, failure.err);
    goto fail;
  }
  /* EOF: execve succeeded (the pipe closed on exec). */
  CHECK(napi_create_int32(env, pid, &result));
  free_plan(&plan);
  return result;

fail:
  free_plan(&plan);
  return NULL;
}

/* ---- reap ------------------------------------------------------------------------------------- */

static napi_value reap_children(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value list;
  if (napi_create_array(env, &list) != napi_ok) return NULL;
  uint32_t count = 0;
  for (;;) {
    int status = 0;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid < 0 && errno == EINTR) continue;
    if (pid <= 0) break; /* 0: children left, none finished; -1 ECHILD: no children at all */
    napi_value entry, pid_value, code_value, signal_value;
    if (napi_create_object(env, &entry) != napi_ok || napi_create_int32(env, pid, &pid_value) != napi_ok) return NULL;
    if (WIFEXITED(status)) {
      napi_create_int32(env, WEXITSTATUS(status), &code_value);
      napi_get_null(env, &signal_value);
    } else if (WIFSIGNALED(status)) {
      napi_get_null(env, &code_value);
      napi_create_int32(env, WTERMSIG(status), &signal_value);
    } else {
      continue; /* stopped or continued: not reported without WUNTRACED/WCONTINUED */
    }
    napi_set_named_property(env, entry, "pid", pid_value);
    napi_set_named_property(env, entry, "exitCode", code_value);
    napi_set_named_property(env, entry, "signal", signal_value);
    if (napi_set_element(env, list, count++, entry) != napi_ok) return NULL;
  }
  return list;
}

/* ---- pipe, subreaper ------------------------------------------------------------------------- */

static napi_value make_pipe(napi_env env, napi_callback_info info) {
  (void)info;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    char message[128];
    snprintf(message, sizeof message, "pipe2: %s", strerror(errno));
    napi_throw_error(env, errno_code(errno), message);
    return NULL;
  }
  napi_value list, read_end, write_end;
  if (napi_create_array_with_length(env, 2, &list) != napi_ok || napi_create_int32(env, fds[0], &read_end) != napi_ok ||
      napi_create_int32(env, fds[1], &write_end) != napi_ok || napi_set_element(env, list, 0, read_end) != napi_ok ||
      napi_set_element(env, list, 1, write_end) != napi_ok) {
    close(fds[0]);
    close(fds[1]);
    throw_pending_or(env, "agentd_proc: pipe result");
    return NULL;
  }
  return list;
}

static napi_value become_subreaper(napi_env env, napi_callback_info info) {
  (void)info;
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) {
    char message[128];
    snprintf(message, sizeof message, "prctl(PR_SET_CHILD_SUBREAPER): %s", strerror(errno));
    napi_throw_error(env, errno_code(errno), message);
  }
  return NULL;
}

/* ---- module ----------------------------------------------------------------------------------- */

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor properties[] = {
      {"spawn", NULL, spawn_command, NULL, NULL, NULL, napi_enumerable, NULL},
      {"reap", NULL, reap_children, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pipe", NULL, make_pipe, NULL, NULL, NULL, napi_enumerable, NULL},
      {"becomeSubreaper", NULL, become_subreaper, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof properties / sizeof properties[0], properties) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(agentd_proc, init)
