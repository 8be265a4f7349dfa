import type { ChannelModel } from 'amqplib';
import type { Socket } from 'node:net';
import { switchedOff } from '../runtime/mechanisms.ts';

interface AmqplibInternals {
  connection?: { stream?: Socket; muxer?: { _readIncoming?: () => void } };
}

/**
 * amqplib's multiplexer hands the socket one frame at a time, and a socket with nothing
 * pending writes each at once: one syscall per publish and per ack. Corking the socket for
 * the length of one multiplexer round makes all the frames of that round a single write.
 * This reaches into amqplib's internals (pinned by the lockfile); if they are not there,
 * nothing changes.
 */
export function coalesceWrites(model: ChannelModel): void {
  if (switchedOff('coalesced-writes')) return;
  const internals = (model as unknown as AmqplibInternals).connection;
  const stream = internals?.stream;
  const muxer = internals?.muxer;
  const round = muxer?._readIncoming;
  if (!stream || !muxer || typeof round !== 'function' || typeof stream.cork !== 'function') return;
  muxer._readIncoming = function coalesced(this: unknown) {
    stream.cork();
    try {
      round.call(muxer);
    } finally {
      stream.uncork();
    }
  };
}
