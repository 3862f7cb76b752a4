//! A first-come, first-served lock whose place in line is taken without waiting.
//!
//! Order is decided when [`FifoLock::ticket`] is called (a synchronous call), not when a
//! task is first polled or wakes: the holder of an earlier ticket always gets its
//! [`Turn`] before the holder of a later one. glommio's `Semaphore` does not promise
//! this: a waiter woken by a release competes with any newcomer for the freed unit, and
//! the newcomer can win. That let a later produce request append before an earlier one
//! (issue 11).
//!
//! Single-threaded (one shard), cancellation-safe: a ticket or turn dropped at any point
//! gives its place to the next ticket in line.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// The lock. Cheap to create; tickets keep its line alive on their own.
#[derive(Debug, Default)]
pub struct FifoLock {
    line: Rc<RefCell<Line>>,
}

#[derive(Debug, Default)]
struct Line {
    /// The next ticket number to hand out.
    next_ticket: u64,
    /// Tickets still in line, oldest first; the front one holds the lock or is next.
    waiting: VecDeque<Place>,
    /// Whether the front ticket has taken its turn (and not yet dropped it).
    held: bool,
    /// The last ticket that got its turn: turns go out in ticket order.
    last_granted: Option<u64>,
}

#[derive(Debug)]
struct Place {
    ticket: u64,
    /// The waker of a task waiting for this turn.
    waker: Option<Waker>,
}

impl FifoLock {
    /// A new, free lock.
    pub fn new() -> Self {
        FifoLock::default()
    }

    /// Takes the next place in line. The place is fixed now; [`Ticket::turn`] waits for it.
    pub fn ticket(&self) -> Ticket {
        let mut line = self.line.borrow_mut();
        let ticket = line.next_ticket;
        line.next_ticket += 1;
        line.waiting.push_back(Place { ticket, waker: None });
        Ticket { line: self.line.clone(), ticket, done: false }
    }

    /// Takes a ticket and waits for its turn.
    pub async fn lock(&self) -> Turn {
        self.ticket().turn().await
    }

    /// Whether `ticket` was taken from this lock.
    pub fn issued(&self, ticket: &Ticket) -> bool {
        Rc::ptr_eq(&self.line, &ticket.line)
    }

    /// Tickets in line, the holder's included.
    pub fn queued(&self) -> usize {
        self.line.borrow().waiting.len()
    }
}

/// A place in a [`FifoLock`]'s line. Dropping it unused leaves the line.
#[derive(Debug)]
#[must_use = "a ticket holds up everyone behind it until it is used or dropped"]
pub struct Ticket {
    line: Rc<RefCell<Line>>,
    ticket: u64,
    /// Became a turn (the turn leaves the line instead).
    done: bool,
}

impl Ticket {
    /// This ticket's number: tickets of one lock are numbered in the order taken.
    pub fn number(&self) -> u64 {
        self.ticket
    }

    /// Waits until every earlier ticket has had its turn and dropped it.
    pub fn turn(self) -> TurnFuture {
        TurnFuture { ticket: Some(self) }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.done {
            leave(&self.line, self.ticket);
        }
    }
}

/// Waits for a [`Ticket`]'s turn.
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct TurnFuture {
    ticket: Option<Ticket>,
}

impl Future for TurnFuture {
    type Output = Turn;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Turn> {
        let ticket = self.ticket.as_ref().expect("polled after completion");
        let number = ticket.ticket;
        {
            let mut line = ticket.line.borrow_mut();
            let front = line.waiting.front().map(|place| place.ticket);
            if front != Some(number) || line.held {
                let place = line.waiting.iter_mut().find(|place| place.ticket == number).expect("in line");
                place.waker = Some(cx.waker().clone());
                return Poll::Pending;
            }
            assert!(line.last_granted.is_none_or(|last| last < number), "turns are granted in ticket order");
            line.held = true;
            line.last_granted = Some(number);
        }
        let mut ticket = self.ticket.take().expect("checked above");
        ticket.done = true;
        Poll::Ready(Turn { line: ticket.line.clone(), ticket: number })
    }
}

/// Holding the lock. Dropping it lets the next ticket in line take its turn.
#[derive(Debug)]
#[must_use = "the lock is released as soon as the turn is dropped"]
pub struct Turn {
    line: Rc<RefCell<Line>>,
    ticket: u64,
}

impl Drop for Turn {
    fn drop(&mut self) {
        {
            let mut line = self.line.borrow_mut();
            assert!(line.held, "a turn is held while it lives");
            line.held = false;
        }
        leave(&self.line, self.ticket);
    }
}

/// Takes `ticket` out of line and wakes the new front if the lock is free.
fn leave(line: &Rc<RefCell<Line>>, ticket: u64) {
    let waker = {
        let mut line = line.borrow_mut();
        let at = line.waiting.iter().position(|place| place.ticket == ticket).expect("a ticket leaves once");
        line.waiting.remove(at);
        if line.held {
            None
        } else {
            line.waiting.front_mut().and_then(|place| place.waker.take())
        }
    };
    // Woken outside the borrow: a waker may poll in place.
    if let Some(waker) = waker {
        waker.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::task::noop_waker_ref;

    fn poll<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
        Pin::new(future).poll(&mut Context::from_waker(noop_waker_ref()))
    }

    #[test]
    fn turns_follow_ticket_order_not_poll_order() {
        let lock = FifoLock::new();
        let first = lock.ticket();
        let second = lock.ticket();
        let third = lock.ticket();
        let mut third = third.turn();
        let mut second = second.turn();
        assert!(poll(&mut third).is_pending(), "an earlier ticket is waiting");
        assert!(poll(&mut second).is_pending());
        let mut first = first.turn();
        let Poll::Ready(turn) = poll(&mut first) else { panic!("the first ticket goes at once") };
        assert!(poll(&mut third).is_pending(), "held");
        drop(turn);
        assert!(poll(&mut third).is_pending(), "the second ticket is still ahead");
        let Poll::Ready(turn) = poll(&mut second) else { panic!("second's turn") };
        drop(turn);
        assert!(poll(&mut third).is_ready());
    }

    #[test]
    fn a_newcomer_never_overtakes_a_woken_waiter() {
        // The glommio semaphore's failure: the holder releases, the woken waiter has not
        // run yet, and a new ticket is polled first.
        let lock = FifoLock::new();
        let Poll::Ready(holding) = poll(&mut lock.ticket().turn()) else { panic!("free") };
        let mut waiter = lock.ticket().turn();
        assert!(poll(&mut waiter).is_pending());
        drop(holding);
        let mut newcomer = lock.ticket().turn();
        assert!(poll(&mut newcomer).is_pending(), "the woken waiter keeps its place");
        let Poll::Ready(turn) = poll(&mut waiter) else { panic!("waiter's turn") };
        drop(turn);
        assert!(poll(&mut newcomer).is_ready());
    }

    #[test]
    fn dropped_tickets_and_waits_give_up_their_place() {
        let lock = FifoLock::new();
        let Poll::Ready(holding) = poll(&mut lock.ticket().turn()) else { panic!("free") };
        let abandoned = lock.ticket();
        let mut cancelled = lock.ticket().turn();
        assert!(poll(&mut cancelled).is_pending());
        let mut last = lock.ticket().turn();
        assert_eq!(lock.queued(), 4);
        drop(abandoned);
        drop(cancelled);
        assert!(poll(&mut last).is_pending(), "still held");
        drop(holding);
        let Poll::Ready(turn) = poll(&mut last) else { panic!("the last ticket is next") };
        assert_eq!(lock.queued(), 1, "only the holder is left");
        drop(turn);
        assert_eq!(lock.queued(), 0);
    }

    #[test]
    fn release_wakes_the_next_in_line() {
        use std::sync::{Arc, Mutex};
        struct Record(Arc<Mutex<Vec<u64>>>, u64);
        impl std::task::Wake for Record {
            fn wake(self: Arc<Self>) {
                self.0.lock().unwrap().push(self.1);
            }
        }
        let woken = Arc::new(Mutex::new(Vec::new()));
        let waker = |n| Waker::from(Arc::new(Record(woken.clone(), n)));
        let lock = FifoLock::new();
        let Poll::Ready(holding) = poll(&mut lock.ticket().turn()) else { panic!("free") };
        let mut next = lock.ticket().turn();
        let mut after = lock.ticket().turn();
        assert!(Pin::new(&mut next).poll(&mut Context::from_waker(&waker(1))).is_pending());
        assert!(Pin::new(&mut after).poll(&mut Context::from_waker(&waker(2))).is_pending());
        drop(holding);
        assert_eq!(*woken.lock().unwrap(), vec![1], "only the next ticket is woken");
    }
}
