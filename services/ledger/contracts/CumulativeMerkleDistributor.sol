// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

/// @title CumulativeMerkleDistributor
/// @notice Pays each account what the longtail network owes it, epoch after epoch. Every epoch the
/// poster replaces the root with one over (account, cumulativeAmount): everything the account has
/// earned since the first epoch. An account claims `cumulativeAmount - claimed[account]` with a
/// proof against the current root, so one claim collects every epoch since its last claim, and an
/// older proof can never pay more than it promised.
///
/// Leaf: OpenZeppelin standard tree, keccak256(bytes.concat(keccak256(abi.encode(account,
/// cumulativeAmount)))). Double hashing keeps a 64-byte leaf preimage from passing as an inner node.
///
/// Funding: posting pulls `cumulativeTotal - totalFunded` tokens from the poster in the same
/// transaction, so a root is never live without the tokens that back it. Hence, at all times,
/// token.balanceOf(this) >= totalFunded - (sum of claims): every promise is funded.
contract CumulativeMerkleDistributor is AccessControl {
    using SafeERC20 for IERC20;

    bytes32 public constant POSTER_ROLE = keccak256("POSTER_ROLE");

    IERC20 public immutable token;

    /// Root over (account, cumulativeAmount) as of the last posted epoch (nextEpoch - 1).
    bytes32 public merkleRoot;
    /// Lowest epoch a post may carry: last posted epoch + 1, or 0 before the first post (epochs
    /// are numbered from 0). The chain holds epoch E's root, or a later one, iff E < nextEpoch.
    uint64 public nextEpoch;
    /// Sum of every account's cumulative amount as of the last post, in base units; all of it funded.
    uint192 public totalFunded;
    /// Base units paid to each account so far.
    mapping(address account => uint256) public claimed;

    event RootPosted(uint64 indexed epoch, bytes32 root, uint256 cumulativeTotal, uint256 funded);
    /// `amount` is what this claim paid. The account's running total is `claimed(account)`, and the
    /// epoch is that of the last RootPosted before the claim: neither is logged, because every
    /// word here is paid by every claimer (a claim must stay under 90,000 gas with a 20-level proof).
    event Claimed(address indexed account, uint256 amount);

    error EpochNotIncreasing(uint64 epoch, uint64 nextEpoch);
    error CumulativeTotalDecreased(uint256 cumulativeTotal, uint256 totalFunded);
    error CumulativeTotalTooLarge(uint256 cumulativeTotal);
    error InvalidProof();
    error NothingToClaim(address account, uint256 cumulativeAmount, uint256 alreadyClaimed);

    constructor(IERC20 token_, address admin, address poster) {
        token = token_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(POSTER_ROLE, poster);
    }

    /// @notice Publishes the cumulative root of `epoch` and pulls the funding it adds from the
    /// caller (who must have approved this contract). Epochs strictly increase; a repeated or older
    /// epoch is refused, which is what makes a re-sent post harmless.
    /// @param cumulativeTotal sum of all cumulative amounts in the tree, base units
    function postRoot(uint64 epoch, bytes32 root, uint256 cumulativeTotal) external onlyRole(POSTER_ROLE) {
        uint64 next = nextEpoch;
        if (epoch < next) revert EpochNotIncreasing(epoch, next);
        uint256 funded = totalFunded;
        if (cumulativeTotal < funded) revert CumulativeTotalDecreased(cumulativeTotal, funded);
        if (cumulativeTotal > type(uint192).max) revert CumulativeTotalTooLarge(cumulativeTotal);

        merkleRoot = root;
        nextEpoch = epoch + 1;
        totalFunded = uint192(cumulativeTotal);
        uint256 added = cumulativeTotal - funded;
        emit RootPosted(epoch, root, cumulativeTotal, added);

        if (added > 0) token.safeTransferFrom(msg.sender, address(this), added);
    }

    /// @notice Pays `account` everything it has earned and not yet claimed. Anyone may submit the
    /// claim; the tokens always go to `account`.
    /// @param cumulativeAmount the account's cumulative amount in the current tree, base units
    function claim(address account, uint256 cumulativeAmount, bytes32[] calldata proof) external {
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(account, cumulativeAmount))));
        if (!MerkleProof.verifyCalldata(proof, merkleRoot, leaf)) revert InvalidProof();

        uint256 already = claimed[account];
        if (cumulativeAmount <= already) revert NothingToClaim(account, cumulativeAmount, already);

        // Effects before interactions: the account is marked paid before the transfer runs.
        claimed[account] = cumulativeAmount;
        uint256 amount = cumulativeAmount - already;
        emit Claimed(account, amount);

        token.safeTransfer(account, amount);
    }
}
