#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
#
# Turn the raw output of `kunit.py run --raw_output=all` into qcow result
# lines: one "PASS|FAIL|SKIP kunit/<suite>.<case>" per test case, plus
# "kunit/kernel-log" for the scan of the kernel log for KASAN, lockdep,
# BUG/WARNING/Oops reports (a test that passes while the kernel complains
# is a failure).  Parsing uses the kernel tree's own kunit_parser.
#
# usage: results.py KERNEL_TREE RAW_LOG RESULTS_FILE [SUITE...]
#   a SUITE named after the files must have run (run.sh names the leak
#   check, qcow_kmemleak, for a run of all suites)
# exit status: 0 all passed, 1 something failed, 2 no test ran at all.

import re
import sys

tree, raw_log, results_file = sys.argv[1:4]
required = sys.argv[4:]
sys.path.insert(0, tree + '/tools/testing/kunit')
import kunit_parser  # noqa: E402
from kunit_parser import TestStatus  # noqa: E402

# kunit.py prints this before each boot of the UML kernel; everything
# before the first one is build output.
START = re.compile(r'Starting KUnit Kernel')

# Reports the kernel's debugging options print.  Every KASAN and lockdep
# splat starts with "BUG:" or "WARNING:"; the rest catch what is printed
# when those headers are missing (panic, oops, lockdep turning itself off).
# kmemleak's own trouble counts too: it turned itself off (the leak check
# would see nothing) or was told about an object it does not know.  Its
# "N new suspected memory leaks" line does not: the qcow_kmemleak suite
# plants a canary leak on purpose and decides itself which leaks are ours.
REPORT = re.compile(r'BUG:|WARNING:|Oops|Kernel panic|cut here|KASAN:|UBSAN:|'
		    r'DEBUG_LOCKS_WARN_ON|turning off the locking correctness validator|'
		    r'INFO:|general protection fault|'
		    r'kmemleak: (Kernel memory leak detector disabled|Cannot |'
		    r'Memory pool empty|.*[Uu]nknown object|Found object by alias|'
		    r'Scan area larger)')

with open(raw_log, errors='replace') as f:
	lines = f.read().splitlines()

runs = []
for line in lines:
	if START.search(line):
		runs.append([])
	elif runs:
		runs[-1].append(line)

out = []
failed = False
ncases = 0


def emit(status, name, note=''):
	global failed
	if status == 'FAIL':
		failed = True
	out.append(f'{status} kunit/{name}' + (f' ({note})' if note else ''))


# kunit_parser does not keep skip reasons: take them from the KTAP lines.
SKIPPED = {}
for line in lines:
	m = re.match(r'\s*ok \d+ (.*?) # SKIP\s*(.*)$', line)
	if m:
		SKIPPED[m.group(1)] = m.group(2).strip()


def skip_reason(test):
	return SKIPPED.get(test.name) or 'skipped'


def case_status(test):
	if test.status == TestStatus.SUCCESS:
		return 'PASS'
	if test.status == TestStatus.SKIPPED:
		return 'SKIP'
	return 'FAIL'


# Pin each report on the test that was running: the one whose KTAP result
# line comes next.  Suites are indented 4, cases 4 (their result lines),
# parameters 8.
SUBTEST = re.compile(r'^( *)# Subtest: (.*)$')
RESULT = re.compile(r'^( *)(?:not )?ok \d+ (.*?)(?: # .*)?$')
reports = []		# (line, suite, case)
for run in runs:
	pending, suite, pcase = [], '', ''
	for line in run:
		if REPORT.search(line):
			pending.append(line.strip())
			continue
		m = SUBTEST.match(line)
		if m:
			if len(m.group(1)) == 4:
				suite = m.group(2)
			elif len(m.group(1)) == 8:
				pcase = m.group(2)
			continue
		m = RESULT.match(line)
		if not m:
			continue
		depth = len(m.group(1))
		if pending:
			where = (m.group(2), '') if depth == 0 else \
				(suite, m.group(2)) if depth == 4 else (suite, pcase)
			reports += [(r, *where) for r in pending]
			pending = []
		if depth <= 4:
			pcase = ''
	# A crash leaves its reports after the last result line: blame the
	# parametrized case still open, else the suite.
	reports += [(r, suite, pcase) for r in pending]
reported = {(s, c): r for r, s, c in reversed(reports)}

LEAK_SUITE = 'qcow_kmemleak'

# Parametrized cases are reported once per case (all parameters must pass);
# the failing parameters are named in the note and in kunit.py's output.
for run in runs:
	main = kunit_parser.parse_run_tests(run)
	# kunit_parser stands in a nameless test for each one that never
	# reported (the kernel died first): one line per suite says so.
	lost = [t for t in main.subtests if not t.name]
	if lost:
		emit('FAIL', 'crashed', f'{len(lost)} suites never ran')
	for suite in main.subtests:
		if not suite.name:
			continue
		if not suite.subtests:
			emit('FAIL', suite.name, f'suite {suite.status.name.lower()}, no case ran')
			continue
		if (suite.name, '') in reported:
			emit('FAIL', suite.name, 'kernel report: ' + reported[(suite.name, '')])
		last, lost = '', 0
		for case in suite.subtests:
			if not case.name:
				lost += 1
				continue
			ncases += 1
			last = case.name
			status = case_status(case)
			note = ''
			if status == 'SKIP':
				note = skip_reason(case)
			elif status == 'FAIL' and case.subtests:
				bad = [p.name for p in case.subtests if p.name and
				       p.status not in (TestStatus.SUCCESS, TestStatus.SKIPPED)]
				note = 'failed params: ' + ', '.join(bad) if bad else ''
				if any(not p.name for p in case.subtests):
					good = [p.name for p in case.subtests if p.name]
					note += ('; ' if note else '') + 'crashed after ' + \
						(good[-1] if good else 'the start')
				note = note or case.status.name.lower()
			elif status == 'FAIL':
				note = case.status.name.lower()
			if (suite.name, case.name) in reported:
				kr = 'kernel report: ' + reported[(suite.name, case.name)]
				note = kr + ('; ' + note if status == 'FAIL' else '')
				status = 'FAIL'
			emit(status, f'{suite.name}.{case.name}', note)
		if lost:
			emit('FAIL', f'{suite.name}.crashed',
			     f'{lost} cases never reported, after {last or "the suite start"}')
	# The leak check only sees what ran before it: it must be the last
	# qcow suite (suites run in link order, see the driver Makefile).
	names = [t.name for t in main.subtests if t.name]
	if LEAK_SUITE in names:
		late = [n for n in names[names.index(LEAK_SUITE) + 1:] if n.startswith('qcow_')]
		if late:
			emit('FAIL', f'{LEAK_SUITE}.order', 'suites ran after the leak check: ' +
			     ', '.join(late))
	if main.status not in (TestStatus.SUCCESS, TestStatus.SKIPPED, TestStatus.NO_TESTS) \
	   and not any(line.startswith('FAIL') for line in out):
		emit('FAIL', 'run', f'kunit run {main.status.name.lower()}')

if runs:
	if reports:
		emit('FAIL', 'kernel-log', f'{len(reports)} report lines')
		print('kunit: the kernel log has reports (KASAN/lockdep/BUG/WARNING):')
		for line, suite, case in reports[:40]:
			where = f'{suite}.{case}' if case else suite or 'outside any test'
			print(f'  [{where}] {line}')
	else:
		emit('PASS', 'kernel-log')

if runs:
	ran = {t.name for run in runs for t in kunit_parser.parse_run_tests(run).subtests}
	for name in required:
		if name not in ran:
			emit('FAIL', name, 'suite did not run')

# The leak check prints the unreferenced objects it blames on qcow as
# "kmemleak: ..." lines of its case; repeat them when it failed.
if any(line.startswith(f'FAIL kunit/{LEAK_SUITE}.') for line in out):
	leaks = [line.strip() for run in runs for line in run
		 if re.search(r'# \w+: kmemleak: ', line)]
	if leaks:
		print('kunit: kmemleak (qcow_kmemleak):')
		for line in leaks[:60]:
			print('  ' + line)

if not runs:
	emit('FAIL', 'run', 'UML kernel never started')
elif ncases == 0:
	emit('FAIL', 'run', 'no test case ran')

with open(results_file, 'a') as f:
	for line in out:
		f.write(line + '\n')

npass = sum(1 for line in out if line.startswith('PASS'))
nfail = sum(1 for line in out if line.startswith('FAIL'))
nskip = sum(1 for line in out if line.startswith('SKIP'))
for line in out:
	if not line.startswith('PASS'):
		print('  ' + line)
print(f'kunit: {ncases} test cases; results: {npass} passed, {nfail} failed, {nskip} skipped')
sys.exit(2 if ncases == 0 else 1 if failed else 0)
