/**
 * What each console-level scenario action does to a console, through its hardware hooks. A
 * duration schedules the end of the condition in simulated time; without one it lasts the run.
 */
import type { SimAction } from './actions.js';
import type { SimulatedConsole } from './console.js';

export function applyConsoleAction(c: SimulatedConsole, a: SimAction): void {
  const during = (begin: () => void, end: () => void): void => {
    begin();
    if (a.durationMs !== undefined) c.schedule(c.simNow + a.durationMs, end);
  };
  switch (a.action) {
    case 'venous_kink':
      return during(() => c.instrument.setFaults({ venousResistance: a.params.severity }), () => c.instrument.setFaults({ venousResistance: 1 }));
    case 'access_collapse':
      return during(() => c.instrument.setFaults({ accessResistance: a.params.severity }), () => c.instrument.setFaults({ accessResistance: 1 }));
    case 'return_disconnect':
      return during(() => c.instrument.setFaults({ returnDisconnected: true }), () => c.instrument.setFaults({ returnDisconnected: false }));
    case 'air_in_line':
      return during(() => c.setDetector('air', true), () => c.setDetector('air', false));
    case 'blood_leak':
      return during(() => c.setDetector('bloodLeak', true), () => c.setDetector('bloodLeak', false));
    case 'heater_failure': {
      const { mode, silent } = a.params;
      const text = mode === 'off' ? 'Reactor heater failure' : 'Reactor heater over-temperature';
      return during(() => {
        c.instrument.setFaults({ heater: mode });
        if (!silent) c.raiseEvent('HEATER_FAULT', 'M', true, text);
      }, () => {
        c.instrument.setFaults({ heater: 'ok' });
        if (!silent) c.raiseEvent('HEATER_FAULT', 'M', false, text);
      });
    }
    case 'reactor_clotting': {
      // Clot already formed stays when the episode ends; only the fast growth stops.
      const rate = a.params.ratePerMin;
      return during(
        () => c.instrument.setFaults({ clotRatePerMin: c.instrument.faults.clotRatePerMin + rate }),
        () => c.instrument.setFaults({ clotRatePerMin: Math.max(0, c.instrument.faults.clotRatePerMin - rate) }),
      );
    }
    case 'sensor_fault': {
      const { channel, mode } = a.params;
      return during(() => c.instrument.setSensor(channel, mode, true), () => c.instrument.setSensor(channel, mode, false));
    }
    case 'clock_skew':
      return c.skewClock(a.params.ms);
    case 'unanswered_command':
      return c.loseNextCommands(a.params.count);
    case 'power_cycle':
      return c.powerCycle(a.durationMs ?? 0);
    case 'set_rate':
      return c.setRate(a.params.hz);
    case 'command':
      c.panel(a.params.verb, a.params.args);
      return;
    case 'internal_fault':
      return c.enterFault(a.params.code, a.params.text);
    case 'link_drop': case 'garbage_bytes': case 'bad_crc':
      throw new Error(`${a.action} is applied by the link, not the console`);
  }
}
