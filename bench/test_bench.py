#!/usr/bin/env python3
"""Unit tests of scripts/bench's arithmetic: the ratios, the CPU budget and
the floors that decide the targets' verdicts in docs/performance.md.
Run by scripts/test (`python3 bench/test_bench.py`); needs no peer."""

import importlib.machinery
import importlib.util
import os
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
loader = importlib.machinery.SourceFileLoader("bench", os.path.join(ROOT, "scripts", "bench"))
spec = importlib.util.spec_from_loader("bench", loader)
b = importlib.util.module_from_spec(spec)
loader.exec_module(b)


def member(*runs):
    m = b.Member("m", "m")
    m.runs = list(runs)
    return m


class Ratios(unittest.TestCase):
    def test_pair_ratio_is_the_median_of_the_rounds_where_both_ran(self):
        a = member({"rate": 10}, {"rate": 30}, {"_error": "x"}, {"rate": 8})
        d = member({"rate": 20}, {"rate": 30}, {"rate": 5}, {"rate": 10})
        r, n = b.pair_ratio(a, d)
        self.assertEqual(n, 3)  # the failed round is left out
        self.assertAlmostEqual(r, 0.8)  # median of 0.5, 1.0, 0.8

    def test_pair_ratio_difference_of_a_sub_field(self):
        a = member({"latency_us": {"p50": 90}}, {"latency_us": {"p50": 100}})
        d = member({"latency_us": {"p50": 40}}, {"latency_us": {"p50": 60}})
        r, n = b.pair_ratio(a, d, "latency_us", "p50", diff=True)
        self.assertEqual((r, n), (45, 2))

    def test_cpu_ratio_of_the_whole_or_of_the_kernel_part(self):
        a = member({"_cpu_us": {"ucgate": 16.0}, "_kernel_us": {"ucgate": 12.0}})
        w = member({"_cpu_us": {"websocat": 20.0}})
        self.assertAlmostEqual(b.cpu_ratio(a, "ucgate", w, "websocat"), 0.8)
        self.assertAlmostEqual(b.cpu_ratio(a, "ucgate", w, "websocat", a_field="_kernel_us"), 0.6)


class Budget(unittest.TestCase):
    def setUp(self):
        b.BUDGETS.clear()

    def test_budget_at_the_target_rate(self):
        via = member({"rate": 8000, "_cpu_us": {"ucgate": 30.0, "Prosody": 100.0, "client": 30.0},
                      "_kernel_us": {"ucgate": 20.0, "Prosody": 50.0, "client": 10.0}})
        direct = member({"rate": 10000, "_cpu_us": {"Prosody": 90.0, "client": 25.0}})
        b.cpu_budget("t", via, direct, 0.9)
        name, measured, gw, gw_kernel, cap, others, single, busy = b.BUDGETS[-1]
        self.assertEqual(name, "t")
        self.assertAlmostEqual(measured, 0.8)
        # at 9,000 messages/s two cores give 2e6 / 9000 µs per message
        self.assertAlmostEqual(cap, 2e6 / 9000)
        self.assertAlmostEqual(gw, 30.0)
        self.assertAlmostEqual(gw_kernel, 20.0)  # the gateway's kernel part only
        self.assertAlmostEqual(others, 130.0)
        # Prosody at 100 µs per message and 9,000 messages/s: 90 % of a core
        self.assertAlmostEqual(single, 90.0)
        # the via run's own CPU: 160 µs × 8,000/s = 128 % of one core
        self.assertAlmostEqual(busy, 128.0)

    def test_no_budget_without_cpu_figures(self):
        b.cpu_budget("t", member({"rate": 1}), member({"rate": 1}), 0.5)
        self.assertEqual(b.BUDGETS, [])


class Floors(unittest.TestCase):
    def test_sip_one_client_floor(self):
        # 300 µs round trip, 25 µs a crossing, Kamailio 100 µs more: 300 / 500
        self.assertAlmostEqual(b.sip_one_client_floor(300, 25, 100), 0.6)
        # Kamailio cheaper behind the edge never raises the floor above four crossings
        self.assertAlmostEqual(b.sip_one_client_floor(300, 25, -40), 0.75)

    def test_relay_floor_names_each_relay_that_ran(self):
        tcp = member({"rate": 100}, {"rate": 100})
        urel = member({"rate": 60}, {"rate": 62})
        wrel = member({"_error": "x"}, {"_error": "x"})
        self.assertEqual(b.relay_floor(tcp, urel, wrel), ["ucgate's tunnel 0.61×"])


class ProcessCpu(unittest.TestCase):
    def test_kernel_part_is_part_of_the_whole(self):
        pgid = os.getpgid(0)
        x, deadline = 0, time.monotonic() + 5
        while b.group_cpu(pgid) == 0 and time.monotonic() < deadline:
            x += sum(range(100000))  # some CPU of our own (clock ticks are 10 ms)
        total, kernel = b.group_cpu(pgid), b.group_cpu(pgid, kernel_only=True)
        self.assertGreater(total, 0)
        self.assertLessEqual(kernel, total)


if __name__ == "__main__":
    unittest.main()
